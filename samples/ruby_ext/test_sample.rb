# frozen_string_literal: true

# The extension sample: libuv callbacks call Ruby blocks in the context
# captured at registration, the loop runs without the GVL.
require "minitest/autorun"
require "uvwool"
require "uvwool_sample"

class TestSample < Minitest::Test
  REQUEST = Uvwool::ContextVar.new("ruby.sample", "request")

  def now_ns = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)

  def test_callbacks_run_in_the_context_captured_at_registration
    seen = []
    Uvwool::Core.context_new.run do
      loop = UvwoolSample::Loop.new
      REQUEST.set("timer")
      loop.timer(5) { seen << [:timer, REQUEST.get] }
      REQUEST.set("stat")
      loop.stat(__FILE__) { |size| seen << [:stat, REQUEST.get, size] }
      REQUEST.set("offload")
      loop.offload(1000) { |sum| seen << [:offload, REQUEST.get, sum] }
      REQUEST.set("after")
      loop.run
      assert_equal "after", REQUEST.get
    end
    assert_includes seen, [:timer, "timer"]
    assert_includes seen, [:stat, "stat", File.size(__FILE__)]
    assert_includes seen, [:offload, "offload", 500_500]
    assert_equal 3, seen.size
  end

  def test_fibers_register_in_their_own_context
    seen = []
    Uvwool::Core.context_new.run do
      REQUEST.set("root")
      loop = UvwoolSample::Loop.new
      Fiber.new do
        REQUEST.set("fiber")
        loop.timer(1) { seen << REQUEST.get }
      end.resume
      loop.timer(2) { seen << REQUEST.get }
      loop.run
    end
    assert_equal %w[fiber root], seen
  end

  # Ruby work runs on a Ruby Thread, in a fork of the caller's context (its
  # writes stay there); the callback runs on the loop in the context
  # captured when the work was submitted.
  def test_to_thread_runs_ruby_work_on_a_ruby_thread
    seen = []
    main = Thread.current
    Uvwool::Core.context_new.run do
      loop = UvwoolSample::Loop.new
      REQUEST.set("submitted")
      work = lambda do
        saw = REQUEST.get
        REQUEST.set("in-work")
        [saw, Thread.current.equal?(main)]
      end
      loop.to_thread(work) { |result| seen << [result, REQUEST.get] }
      REQUEST.set("after")
      loop.run
      assert_equal "after", REQUEST.get
    end
    assert_equal [[["submitted", false], "submitted"]], seen
  end

  def test_to_thread_work_exceptions_propagate_from_run
    loop = UvwoolSample::Loop.new
    called = false
    loop.to_thread(-> { raise KeyError, "from the work" }) { called = true }
    e = assert_raises(KeyError) { loop.run }
    assert_equal "from the work", e.message
    refute called
    assert_raises(TypeError) { loop.to_thread(42) {} }
  end

  def test_repeat_runs_the_block_once_per_turn_in_the_registration_context
    seen = []
    Uvwool::Core.context_new.run do
      loop = UvwoolSample::Loop.new
      REQUEST.set("repeat")
      loop.repeat(3) { |i| seen << [i, REQUEST.get] }
      REQUEST.set("after")
      loop.run
    end
    assert_equal [[0, "repeat"], [1, "repeat"], [2, "repeat"]], seen
    assert_raises(ArgumentError) { UvwoolSample::Loop.new.repeat(0) {} }
  end

  def test_gvl_retakes_call_the_block_each_time
    n = 0
    UvwoolSample.gvl_retakes(4, proc { n += 1 })
    assert_equal 4, n
  end

  def test_block_exceptions_stop_the_loop_and_propagate
    loop = UvwoolSample::Loop.new
    loop.timer(1) { raise ArgumentError, "from a callback" }
    e = assert_raises(ArgumentError) { loop.run }
    assert_equal "from a callback", e.message
  end

  # The loop thread holds no GVL while it waits: a CPU-bound Ruby thread
  # keeps running, and each callback waits for its turn at the GVL.
  def test_progress_while_another_thread_spins
    stop = false
    spins = 0
    spinner = Thread.new { spins += 1 until stop }
    latencies = []
    contexts = []
    Uvwool::Core.context_new.run do
      loop = UvwoolSample::Loop.new
      5.times do |i|
        REQUEST.set("t#{i}")
        loop.timer(10 * (i + 1)) do |fired|
          latencies << now_ns - fired
          contexts << REQUEST.get
        end
      end
      before = spins
      loop.run
      assert_operator spins, :>, before, "the spinner ran while the loop ran"
    end
    stop = true
    spinner.join
    assert_equal %w[t0 t1 t2 t3 t4], contexts
    ms = latencies.map { |l| (l / 1e6).round(2) }
    puts "\nGVL re-take latency per callback with one spinning thread (ms): #{ms.join(", ")}"
  end
end
