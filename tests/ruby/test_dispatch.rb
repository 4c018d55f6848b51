# frozen_string_literal: true

require_relative "helper"
require "tmpdir"
require "timeout"

# Dispatch to the real C uvwool-worker (UVWOOL_WORKER) serving the routines
# of the C dispatch tests (UVWOOL_TEST_ROUTINES, tests/dispatch/routines.c:
# variables t.request_id, t.tenant, t.counter, t.opaque). CTest sets both.
module WorkerHelper
  REQUEST = Uvwool::ContextVar.new("t", "request_id")
  TENANT = Uvwool::ContextVar.new("t", "tenant")
  COUNTER = Uvwool::ContextVar.new("t", "counter")
  OPAQUE = Uvwool::ContextVar.new("t", "opaque")

  # Start a worker on a fresh unix socket; yields its address; SIGTERM after.
  def with_worker(&blk)
    skip "UVWOOL_WORKER and UVWOOL_TEST_ROUTINES are set by CTest" unless ENV["UVWOOL_WORKER"]
    with_worker_process(->(address) { [ENV.fetch("UVWOOL_WORKER"), "--routines", ENV.fetch("UVWOOL_TEST_ROUTINES"),
                                       "--listen", address] }) { |address, io| blk.call(address, io.pid) }
  end

  # Run the worker command(address) with address a unix socket in a temp dir;
  # once it printed "listening on ADDRESS" yield the address and its stdout.
  def with_worker_process(command)
    Dir.mktmpdir("uvwool-ruby") do |dir|
      address = "pipe:#{dir}/w.sock"
      io = IO.popen(command.call(address), "r")
      begin
        line = Timeout.timeout(60) { io.gets }
        assert_match(/listening on #{Regexp.escape(address)}$/, line.to_s, "the worker did not start")
        yield address, io
      ensure
        stop_worker(io)
      end
    end
  end

  # SIGTERM, then the worker's exit (its stdout's end) within 20 s; returns
  # what it printed meanwhile. One that serves on is killed and fails its test
  # (unless the test failed already), rather than hanging the whole run.
  def stop_worker(io)
    return "" if io.closed?
    Process.kill("TERM", io.pid) rescue nil # rubocop:disable Style/RescueModifier
    rest = begin
      Timeout.timeout(20) { io.read }
    rescue Timeout::Error
      Process.kill("KILL", io.pid) rescue nil # rubocop:disable Style/RescueModifier
      nil
    end
    io.close
    flunk "worker #{io.pid} still served 20 s after SIGTERM" if rest.nil? && !$!
    rest.to_s
  end

  def with_conn(&blk)
    with_worker { |address, pid| Uvwool::Connection.open(address) { |conn| blk.call(conn, pid) } }
  end

  # Variables that are unbound read as "-", as the routines write them.
  def read(var) = var.get("-")
end

class TestDispatchOneShot < Minitest::Test
  include UvwoolTestHelper
  include WorkerHelper

  def test_a_dispatch_returns_the_value_and_applies_the_worker_changes_back
    with_conn do |conn|
      isolated do
        REQUEST.set("r-1")
        assert_equal "saw:r-1", conn.dispatch("read_and_mutate", 41)
        assert_equal "r-1+worker", REQUEST.get
        assert_equal 42, COUNTER.get
      end
    end
  end

  def test_the_changes_reach_the_calling_fiber_only
    with_conn do |conn|
      isolated do
        REQUEST.set("root")
        inside = Fiber.new do
          [conn.dispatch("read_and_mutate", 1), REQUEST.get, COUNTER.get]
        end.resume
        assert_equal ["saw:root", "root+worker", 2], inside
        assert_equal "root", REQUEST.get
        assert_equal "-", read(COUNTER)
      end
    end
  end

  def test_values_cross_both_ways_exactly
    with_conn do |conn|
      [nil, true, false, 2**62, -7, 1.5, -0.0, "héllo", "\xff\x00".b].each do |v|
        back = conn.dispatch("echo", v)
        v.nil? ? assert_nil(back) : assert_equal(v, back)
        assert_equal v.encoding, back.encoding if v.is_a?(String)
      end
      assert_equal(-0.0.to_s, conn.dispatch("echo", -0.0).to_s)
    end
  end

  def test_a_remote_error_raises_with_its_fields_and_its_changes_apply
    with_conn do |conn|
      isolated do
        REQUEST.set("before")
        e = assert_raises(Uvwool::WoolError) { conn.dispatch("raise_after_set") }
        assert_equal "UVW_EREMOTE", e.status
        assert_equal "AppError", e.wire_type
        assert_equal "asked to", e.fields["reason"]
        assert_match(/asked to fail/, e.message)
        assert_equal "set-before-raise", REQUEST.get
      end
    end
  end

  def test_an_unknown_routine_is_refused
    with_conn do |conn|
      e = assert_raises(Uvwool::WoolError) { conn.dispatch("no_such_routine") }
      assert_equal "UVW_ENACK", e.status
      assert_equal 7, conn.dispatch("echo", 7), "the connection goes on"
    end
  end

  def test_the_loop_runs_without_the_gvl
    with_conn do |conn|
      spins = 0
      spinner = Thread.new { loop { spins += 1 } }
      assert_equal "slept", conn.dispatch("sleep", 150)
      spinner.kill.join
      assert_operator spins, :>, 1000, "another Ruby thread ran while the dispatch waited"
    end
  end

  def test_an_interrupt_cancels_the_dispatch_and_the_connection_goes_on
    with_conn do |conn|
      isolated do
        REQUEST.set("kept")
        assert_raises(Timeout::Error) { Timeout.timeout(0.2) { conn.dispatch("hang") } }
        assert_equal "kept", REQUEST.get
        assert_equal 1, conn.dispatch("cancelled_count"), "the worker was told"
      end
    end
  end

  def test_a_connection_in_use_by_another_thread_raises
    with_conn do |conn|
      waiting = Thread.new { conn.dispatch("sleep", 300) }
      Thread.pass until waiting.status == "sleep" || !waiting.alive?
      e = assert_raises(ThreadError) { conn.dispatch("echo", 1) }
      assert_match(/waiting for a reply/, e.message)
      assert_equal "slept", waiting.value
    end
  end

  def test_a_pool_dispatches_to_its_workers
    with_worker do |address, pid|
      pool = Uvwool::Pool.new([address])
      assert_equal pid, pool.dispatch("whoami")
      pool.close
      assert pool.closed?
    end
  end
end

class TestDispatchFailures < Minitest::Test
  include UvwoolTestHelper
  include WorkerHelper

  def test_no_worker_raises_econnreset_and_changes_nothing
    skip "UVWOOL_WORKER is set by CTest" unless ENV["UVWOOL_WORKER"]
    Dir.mktmpdir do |dir|
      Uvwool::Connection.open("pipe:#{dir}/nobody.sock", timeout: 2000) do |conn|
        isolated do
          REQUEST.set("mine")
          id = Uvwool.chain_id
          e = assert_raises(Uvwool::WoolError) { conn.dispatch("read_and_mutate", 1) }
          assert_equal "UVW_ECONNRESET", e.status
          assert_equal "mine", REQUEST.get
          assert_equal "-", read(COUNTER)
          assert_equal id, Uvwool.chain_id
          assert conn.dead?
          e = assert_raises(Uvwool::WoolError) { conn.dispatch("echo", 1) }
          assert_equal "UVW_ECONNRESET", e.code
        end
      end
    end
  end

  def test_a_worker_that_dies_fails_the_dispatch_and_changes_nothing
    with_conn do |conn, pid|
      isolated do
        REQUEST.set("mine")
        assert_equal 1, conn.dispatch("echo", 1)
        Process.kill("KILL", pid)
        Process.wait(pid)
        e = assert_raises(Uvwool::WoolError) { conn.dispatch("read_and_mutate", 1) }
        assert_equal "UVW_ECONNRESET", e.status
        assert_equal "mine", REQUEST.get
        assert_equal "-", read(COUNTER)
      end
    end
  end

  def test_bad_arguments_raise_before_anything_is_sent
    with_conn do |conn|
      isolated do
        REQUEST.set("mine")
        assert_raises(ArgumentError) { conn.dispatch }
        assert_raises(TypeError) { conn.dispatch(42) }
        assert_raises(RangeError) { conn.dispatch("read_and_mutate", 2**70) }
        assert_equal "mine", REQUEST.get
        assert_equal "-", read(COUNTER)
        assert_equal "saw:mine", conn.dispatch("read_and_mutate", 1)
      end
    end
  end

  def test_a_closed_connection_raises
    with_conn do |conn|
      conn.close
      assert conn.closed?
      e = assert_raises(IOError) { conn.dispatch("echo", 1) }
      assert_match(/closed/, e.message)
    end
  end

  def test_an_opaque_value_warns_once_through_warning_with_the_category
    with_conn do |conn|
      seen = []
      Warning.singleton_class.alias_method(:__saved_warn, :warn)
      Warning.define_singleton_method(:warn) { |msg, category: nil| seen << [msg, category] }
      begin
        isolated do
          OPAQUE.set(Object.new)
          REQUEST.set("with-opaque")
          assert_equal "saw:with-opaque", conn.dispatch("read_and_mutate", 1)
          Uvwool::Core.flush_warnings
          kept = OPAQUE.get
          refute_kind_of String, kept, "the opaque binding stays"
        end
      ensure
        Warning.singleton_class.alias_method(:warn, :__saved_warn)
      end
      assert_equal 1, seen.size, seen.inspect
      assert_match(/\Auvwool: SerializationWarning: .*t.*opaque/m, seen[0][0])
      assert_equal :uvwool, seen[0][1]
    end
  end
end

class TestDispatchStream < Minitest::Test
  include UvwoolTestHelper
  include WorkerHelper

  def test_each_yields_every_step_and_returns_the_return_value
    with_conn do |conn|
      isolated do
        REQUEST.set("s")
        seen = []
        result = conn.stream("counter_stream").each { |v| seen << [v, COUNTER.get] }
        assert_equal [["1:s:stream-tenant", 1], ["reset:ok", 2], ["3:s:-", 3], ["4:s:-", 4], ["5:s:-", 5]], seen
        assert_equal "end", result
      end
    end
  end

  def test_next_applies_each_step_to_the_calling_fiber
    with_conn do |conn|
      isolated do
        s = conn.stream("counter_stream")
        assert_equal "1:-:stream-tenant", s.next
        assert_equal "stream-tenant", TENANT.get
        assert_equal "reset:ok", s.next
        assert_equal "-", read(TENANT), "the worker's reset comes back"
        assert_equal 42, s.send_value(21)
        assert_equal 21, COUNTER.get
        e = assert_raises(StopIteration) { s.throw(RuntimeError.new("stop")) }
        assert_equal "caught:stop", e.result
        assert s.ended?
        assert_raises(StopIteration) { s.next }
      end
    end
  end

  def test_a_stream_in_a_fiber_changes_that_fiber_only
    with_conn do |conn|
      isolated do
        COUNTER.set(-1)
        s = conn.stream("counter_stream")
        inside = Fiber.new { [s.next, COUNTER.get] }.resume
        assert_equal ["1:-:stream-tenant", 1], inside
        assert_equal(-1, COUNTER.get)
        s.close
      end
    end
  end

  def test_a_worker_dying_mid_stream_raises_and_changes_nothing
    with_conn do |conn, pid|
      isolated do
        s = conn.stream("hang_after_one")
        assert_equal "one", s.next
        assert_equal "from-step-1", TENANT.get
        TENANT.set("mine")
        killer = Thread.new do
          sleep 0.1
          Process.kill("KILL", pid)
        end
        e = assert_raises(Uvwool::WoolError) { s.next }
        killer.join
        assert_equal "UVW_ECONNRESET", e.status
        assert_equal "mine", TENANT.get
        assert_raises(StopIteration) { s.next }
      end
    end
  end

  def drop_connections_with_open_streams(address, weak, count)
    count.times do |i|
      conn = Uvwool::Connection.new(address)
      stream = conn.stream("counter_stream")
      stream.next
      weak[2 * i] = conn
      weak[2 * i + 1] = stream
    end
  end

  # A stream and its connection collected in one GC, in either order.
  def test_connections_and_streams_dropped_unclosed_are_collected
    with_worker do |address|
      weak = ObjectSpace::WeakMap.new
      drop_connections_with_open_streams(address, weak, 6)
      3.times { GC.start(full_mark: true, immediate_sweep: true) }
      # The conservative stack scan may keep the last ones alive.
      assert_operator (0...12).count { |i| weak.key?(i) }, :<=, 3
      Uvwool::Connection.open(address) { |conn| assert_equal 1, conn.dispatch("echo", 1) }
    end
  end

  def test_a_stream_of_a_closed_connection_raises
    with_conn do |conn|
      s = conn.stream("counter_stream")
      assert_raises(TypeError) { s.throw(42) }
      assert_equal "1:-:stream-tenant", s.next, "a refused step changes nothing"
      conn.close
      assert_raises(IOError) { s.next }
    end
  end
end
