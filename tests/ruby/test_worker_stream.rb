# frozen_string_literal: true

require_relative "helper"
require_relative "test_worker"
require "tmpdir"

# Streaming routines written in Ruby (Worker#stream): the streams of
# ruby_worker.rb, run as a separate process, stepped with Uvwool::Stream; and
# one worker in this process, to see what its close does to a held stream.
class TestRubyWorkerStream < Minitest::Test
  include RubyWorkerHelper

  PHASE = Uvwool::ContextVar.new("t", "phase")

  def test_a_set_before_the_yield_is_kept_across_steps_and_reset_after
    with_conn do |conn|
      isolated do
        PHASE.set("before")
        REQUEST.set("r-1")
        s = conn.stream("phases", "streaming")
        assert_equal "streaming", s.next
        assert_equal "streaming", PHASE.get, "the set before the yield came back"
        REQUEST.set("r-2")
        assert_equal "ping/streaming/r-2", s.send_value("ping"), "the next step sees the set and the caller's new value"
        e = assert_raises(StopIteration) { s.next }
        assert_equal "reset:before:nil", e.result, "a next brings nil; the reset restored the caller's value"
        assert_equal "before", PHASE.get, "the reset came back"
        assert_predicate s, :ended?
      end
    end
  end

  def test_send_values_of_every_kind_reach_the_yield
    with_conn do |conn|
      isolated do
        s = conn.stream("tally", "t")
        assert_equal "t=0", s.next
        assert_equal "t=5", s.send_value(5)
        assert_equal "t=-2", s.send_value(-7)
        assert_equal "t--2", TENANT.get
        e = assert_raises(StopIteration) { s.next }
        assert_equal "t done at -2", e.result
      end
    end
  end

  def test_a_throw_raises_at_the_yield
    with_conn do |conn|
      s = conn.stream("catch_throw")
      assert_equal "ready", s.next
      assert_equal "caught Uvwool::WoolError: stop now (UVW_EREMOTE, ArgumentError)",
                   s.throw(ArgumentError.new("stop now")), "rescued at the yield, the stream goes on"
      assert_equal "after the throw", assert_raises(StopIteration) { s.next }.result
    end
  end

  def test_an_unrescued_throw_ends_the_stream_with_its_message_and_the_reset
    with_conn do |conn|
      isolated do
        PHASE.set("before")
        s = conn.stream("phases", "streaming")
        assert_equal "streaming", s.next
        e = assert_raises(Uvwool::WoolError) { s.throw(RuntimeError.new("halt")) }
        assert_equal "UVW_EREMOTE", e.status
        assert_equal "halt", e.message
        assert_equal "before", PHASE.get, "the ensure's reset came back with the Exception"
        assert_predicate s, :ended?
      end
    end
  end

  def test_an_exception_mid_stream_keeps_its_fields_and_the_set_before_it
    with_conn do |conn|
      isolated do
        REQUEST.set("before")
        s = conn.stream("fail_on_second")
        assert_equal "first", s.next
        e = assert_raises(Uvwool::WoolError) { s.next }
        assert_equal "UVW_EREMOTE", e.status
        assert_equal "the stream broke", e.message
        assert_equal "AppError", e.fields["ruby_class"]
        assert_equal "42", e.fields["order"]
        assert_equal "out of stock", e.fields["reason"]
        assert_equal "set-before-raise", REQUEST.get
        assert_predicate s, :ended?
      end
    end
  end

  def test_a_stream_runs_on_the_callers_chain_and_its_fibers_fork
    with_conn do |conn|
      isolated do
        REQUEST.set("arms the chain")
        chain = Uvwool.chain_id
        s = conn.stream("chain_ids")
        assert_equal "#{chain} false -", s.next, "the caller's chain; the inner fiber's set stayed in its fork"
        assert_equal chain, assert_raises(StopIteration) { s.next }.result
        assert_equal "-", TENANT.get("-")
      end
    end
  end

  def test_closing_a_stream_mid_way_raises_at_its_yield
    with_conn do |conn|
      isolated do
        REQUEST.set("closer")
        s = conn.stream("held")
        assert_equal "held", s.next
        s.close
        assert_equal "UVW_ECANCELED:closer", conn.dispatch("stream_endings"),
                     "the cancellation was raised at the yield, in the stream's context"
      end
    end
  end

  # The caller's process dies holding the stream (a closed Connection would
  # cancel it first).
  CALLER_DIES = <<~RUBY
    require "uvwool"
    Uvwool::ContextVar.new("t", "request_id").set("gone")
    conn = Uvwool::Connection.new(ARGV.fetch(0))
    exit!(conn.stream("held").next == "held" ? 0 : 1)
  RUBY

  def test_a_caller_going_away_mid_stream_raises_at_its_yield
    with_worker do |address, _io|
      assert system(RbConfig.ruby, "-e", CALLER_DIES, address), "the caller held the stream, then died"
      Uvwool::Connection.open(address) do |conn|
        endings = Timeout.timeout(30) do
          sleep 0.01 until (got = conn.dispatch("stream_endings")) != ""
          got
        end
        assert_equal "UVW_ECONNRESET:gone", endings
      end
    end
  end

  def test_many_streams_interleave_on_one_connection
    with_conn do |conn|
      contexts = Array.new(4) { Uvwool::Core.context_new }
      streams = contexts.each_with_index.map { |ctx, i| ctx.run { conn.stream("tally", "s#{i}") } }
      streams.each_with_index { |s, i| assert_equal "s#{i}=0", contexts[i].run { s.next } }
      totals = [0] * 4
      3.times do |round|
        streams.each_with_index do |s, i|
          totals[i] += (10 * i) + round
          assert_equal "s#{i}=#{totals[i]}", contexts[i].run { s.send_value((10 * i) + round) }
        end
      end
      streams.each_with_index do |s, i|
        contexts[i].run do
          assert_equal "s#{i}-#{totals[i]}", TENANT.get, "each stream's changes reach its own context"
          assert_equal "s#{i} done at #{totals[i]}", assert_raises(StopIteration) { s.next }.result
        end
      end
    end
  end

  def test_what_a_stream_block_cannot_do_is_refused_clearly
    with_conn do |conn|
      e = assert_raises(Uvwool::SerializationError) { conn.stream("unconvertible_yield").next }
      assert_match(/no codec registered to encode opaque type 'ruby'/, e.message)
      assert_equal "yield raised Uvwool::SerializationError", conn.dispatch("stream_endings"), "and so did the yield"
      e = assert_raises(Uvwool::WoolError) { conn.stream("yield_in_run").next }
      assert_match(/Yielder#yield inside Context#run/, e.message)
      e = assert_raises(Uvwool::WoolError) { conn.stream("bare_fiber_yield").next }
      assert_match(/"bare_fiber_yield" suspended its fiber without Yielder#yield/, e.message)
      assert_nil assert_raises(StopIteration) { conn.stream("keep_yielder").next }.result
      e = assert_raises(Uvwool::WoolError) { conn.dispatch("yield_outside") }
      assert_match(/Yielder#yield called outside its stream's block/, e.message)
      assert_equal 7, conn.dispatch("echo", 7), "the worker goes on"
    end
  end

  # A worker closed with a stream held between two steps: the close raises
  # at the yield (in the thread that made and ran the worker), and the fiber
  # ends.
  def test_closing_the_worker_ends_a_held_stream
    Dir.mktmpdir("uvwool-ruby") do |dir|
      log = []
      fiber = nil
      made = Queue.new
      server = Thread.new do
        worker = Uvwool::Worker.new
        worker.stream("held") do |y|
          fiber = Fiber.current
          y.yield("held")
        rescue Uvwool::WoolError => e
          log << e.code
          raise
        ensure
          log << :ensure
        end
        worker.listen("pipe:#{dir}/w.sock")
        made << worker
        worker.run
        worker.close
      end
      worker = made.pop
      e = assert_raises(ThreadError) { worker.run }
      assert_match(/runs in the thread that made it/, e.message)
      Uvwool::Connection.open("pipe:#{dir}/w.sock") do |conn|
        s = conn.stream("held")
        assert_equal "held", s.next
        worker.stop
        assert server.join(30), "the worker stopped and closed"
        assert_equal ["UVW_ECONNRESET", :ensure], log
        refute_predicate fiber, :alive?
        assert_raises(Uvwool::WoolError) { s.next }
      end
    end
  end
end
