# frozen_string_literal: true

require_relative "helper"
require_relative "test_dispatch"
require "rbconfig"
require "socket"
require "timeout"

# ruby_worker.rb run as a separate process (also test_worker_stream.rb's).
module RubyWorkerHelper
  include UvwoolTestHelper
  include WorkerHelper

  # REQUEST, TENANT, COUNTER: WorkerHelper's (declared once per process).
  SCRIPT = File.join(__dir__, "ruby_worker.rb")

  def with_worker(&blk) = with_worker_process(->(address) { [RbConfig.ruby, SCRIPT, address] }, &blk)

  def with_conn
    with_worker { |address, io| Uvwool::Connection.open(address) { |conn| yield conn, io } }
  end
end

# Routines written in Ruby (Uvwool::Worker, in ruby_worker.rb run as a
# separate process), dispatched to with the binding's caller API.
class TestRubyWorker < Minitest::Test
  include RubyWorkerHelper

  def test_values_cross_both_ways
    with_conn do |conn|
      [nil, true, false, 7, -(2**63), 2.5, "text", "\xff\x00".b].each do |v|
        got = conn.dispatch("echo", v)
        assert_equal v.inspect, got.inspect
        assert_equal v.class, got.class
      end
      assert_equal Encoding::BINARY, conn.dispatch("echo", "\xff".b).encoding
      assert_equal "Integer,Float,String,NilClass,TrueClass", conn.dispatch("kinds", 1, 1.5, "s", nil, true)
    end
  end

  def test_the_routine_reads_the_callers_context_and_its_sets_flow_back
    with_conn do |conn|
      isolated do
        REQUEST.set("r-1")
        assert_equal "saw:r-1", conn.dispatch("read_and_mutate", 41)
        assert_equal "r-1+ruby", REQUEST.get
        assert_equal 42, COUNTER.get
      end
    end
  end

  def test_a_reset_in_the_routine_flows_back
    with_conn do |conn|
      isolated do
        TENANT.set("acme")
        assert_nil conn.dispatch("set_and_reset")
        assert_equal "seen tenant temporary", REQUEST.get, "the routine's set came back"
        assert_equal "acme", TENANT.get, "its reset came back, not its set"
      end
    end
  end

  def test_a_raised_error_keeps_its_fields_and_the_mutation_before_it
    with_conn do |conn|
      isolated do
        REQUEST.set("before")
        e = assert_raises(Uvwool::WoolError) { conn.dispatch("raise_after_set") }
        assert_equal "UVW_EREMOTE", e.status
        assert_equal "AppError", e.wire_type
        assert_equal "no such order", e.message
        assert_equal "42", e.fields["order"]
        assert_equal "out of stock", e.fields["reason"]
        assert_equal "AppError", e.fields["ruby_class"]
        assert_equal "set-before-raise", REQUEST.get
      end
    end
  end

  def test_an_exception_that_cannot_be_converted_still_answers
    with_conn do |conn|
      e = assert_raises(Uvwool::WoolError) { conn.dispatch("raise_unconvertible") }
      assert_match(/could not be converted/, e.message)
      assert_equal 3, conn.dispatch("echo", 3), "the worker goes on"
    end
  end

  def test_a_wrong_offload_contends_and_to_thread_works
    with_conn do |conn|
      isolated do
        REQUEST.set("r-9")
        e = assert_raises(Uvwool::ChainContention) { conn.dispatch("offload_plain") }
        assert_equal "UVW_EREMOTE", e.status
        assert_equal "thread", e.fields["kind"]
        assert_equal "Uvwool::ChainContention", e.fields["ruby_class"]
        refute_nil e.fields["chain_id"]
        assert_equal "thread saw r-9", conn.dispatch("offload_to_thread")
      end
    end
  end

  def test_a_routine_answering_through_its_call
    with_conn { |conn| assert_equal "later", conn.dispatch("later_echo", "later") }
  end

  def test_a_cancel_reaches_the_routine_in_the_callers_context
    with_worker do |address, _io|
      Uvwool::Connection.open(address) do |conn|
        isolated do
          REQUEST.set("to-cancel")
          assert_raises(Timeout::Error) { Timeout.timeout(0.3) { conn.dispatch("hang") } }
          assert_equal "to-cancel", REQUEST.get, "a cancelled dispatch applies nothing back"
          assert_equal "to-cancel", conn.dispatch("cancelled"), "the on_cancel hook ran, in the call's context"
        end
      end
    end
  end

  def test_an_unknown_routine_is_refused_and_the_worker_goes_on
    with_conn do |conn|
      e = assert_raises(Uvwool::WoolError) { conn.dispatch("no_such_routine") }
      assert_equal "UVW_ENACK", e.status
      assert_equal 5, conn.dispatch("echo", 5)
    end
  end

  # SIGTERM, whose trap stops the worker, right after a routine's threads
  # ended: Ruby's own helper thread for signals could miss it then (the loop
  # ran with an unblocking function Ruby did not know to be signal-safe), and
  # the worker served on. The race did not hit every time: several rounds.
  def test_a_sigterm_right_after_a_routines_threads_stops_the_worker
    12.times do |round|
      with_worker do |address, io|
        Uvwool::Connection.open(address) do |conn|
          isolated do
            REQUEST.set("r-#{round}")
            assert_raises(Uvwool::ChainContention) { conn.dispatch("offload_plain") }
            assert_equal "thread saw r-#{round}", conn.dispatch("offload_to_thread")
          end
        end
        assert_match(/^closed$/, stop_worker(io), "round #{round}: run returned and close ran")
      end
    end
  end

  def test_limits_and_stats_are_the_workers
    with_conn do |conn|
      assert_equal 4, conn.dispatch("limits"), "limits: {max_chains: 4} was applied"
      assert_equal 1, conn.dispatch("dispatches"), "the live dispatch is counted"
    end
  end

  def test_a_peer_error_reaches_on_error
    with_worker do |address, io|
      UNIXSocket.open(address.delete_prefix("pipe:")) { |s| s.write("\xff" * 64) && s.read rescue nil } # rubocop:disable Style/RescueModifier
      line = Timeout.timeout(30) { io.gets }
      assert_match(/\Aon_error: Uvwool::\w+ UVW_E\w+\n\z/, line)
    end
  end

  def test_bad_options_raise_clearly_and_change_nothing
    worker = Uvwool::Worker.new(limits: { max_chains: 5 })
    e = assert_raises(ArgumentError) { worker.limits = { max_chains: 6, bogus: 1 } }
    assert_match(/not every key of \[:max_chains, :bogus\] is a limit/, e.message)
    assert_equal 5, worker.limits[:max_chains], "nothing changed"
    assert_raises(Uvwool::WoolError) { worker.limits = { max_chains: 100 } }
    assert_raises(ArgumentError) { worker.routine("no_block") }
    assert_raises(ArgumentError) { worker.routine("x", answer: :soon) { nil } }
    worker.routine("twice") { nil }
    assert_raises(Uvwool::WoolError) { worker.routine("twice") { nil } }
    assert_raises(Uvwool::WoolError) { worker.listen("nowhere:1") }
    worker.close
    assert_predicate worker, :closed?
    assert_raises(IOError) { worker.listen("pipe:/tmp/uvwool-closed.sock") }
    assert_nil worker.stop, "a stop after close (a late signal) is ignored"
  end
end
