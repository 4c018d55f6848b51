# frozen_string_literal: true

require_relative "helper"

class TestThreads < Minitest::Test
  include UvwoolTestHelper

  def test_thread_new_gets_a_detached_fork
    v = fresh_var
    isolated do
      v.set(1)
      main_id = Uvwool.chain_id
      got, id = Thread.new { v.get.then { |x| v.set(x + 1); [v.get, Uvwool.chain_id] } }.value
      assert_equal 2, got
      refute_nil id
      refute_equal main_id, id
      assert_equal 1, v.get
    end
  end

  def test_thread_forks_at_creation
    v = fresh_var
    isolated do
      v.set(:before)
      q = Queue.new
      t = Thread.new { q.pop; v.get }
      v.set(:after)
      q << :go
      assert_equal :before, t.value
    end
  end

  def test_fibers_inside_threads
    v = fresh_var
    isolated do
      v.set(:main)
      got = Thread.new do
        v.set(:thread)
        f = Fiber.new { v.set(:fiber); v.get }
        [f.resume, v.get]
      end.value
      assert_equal %i[fiber thread], got
    end
  end

  def test_a_chain_touched_from_another_thread_contends
    v = fresh_var
    ctx = Uvwool::Core.context_new
    ctx.run { v.set(1) }
    owner = Uvwool::Core.thread_generation.to_s
    t = Thread.new do
      Thread.current.name = "uvw-intruder"
      ctx.run { v.get }
    end
    t.report_on_exception = false
    e = assert_raises(Uvwool::ChainContention) { t.join }
    assert_equal "thread", e.kind
    assert_equal ctx.chain_id, e.chain_id
    assert_equal owner, e.owner_thread
    refute_equal owner, e.offending_thread
    assert_equal "uvw-intruder", e.runner_thread_name
    assert_equal "get", e.operation
    assert_includes e.full_message(highlight: false), "uvw-intruder"
    assert_includes e.full_message(highlight: false), "\"#{e.owner_thread_name}\""
    # The owner still reads it.
    assert_equal 1, ctx.run { v.get }
  end
end

class TestThreadStart < Minitest::Test
  include UvwoolTestHelper

  def test_thread_start_and_fork_get_a_detached_fork
    v = fresh_var
    isolated do
      v.set(1)
      main_id = Uvwool.chain_id
      %i[start fork].each do |m|
        got, id = Thread.public_send(m, 41) { |x| v.set(v.get + x); [v.get, Uvwool.chain_id] }.value
        assert_equal 42, got
        refute_nil id
        refute_equal main_id, id
        assert_equal 1, v.get
      end
      assert_raises(ThreadError) { Thread.start }
    end
  end
end

# Ruby reuses native threads, and a Ruby thread that raises, or is killed
# inside a fiber, ends without RUBY_EVENT_THREAD_END: the next thread must
# start clean anyway.
class TestThreadEnds < Minitest::Test
  include UvwoolTestHelper

  def clean_start(v) = Thread.new { [v.get, Uvwool::Core.task_id, Uvwool::Core.thread_generation] }.value

  def test_killed_or_raising_threads_leave_nothing_behind
    v = fresh_var
    isolated do
      v.set(:main)
      gens = []
      10.times do
        q = Queue.new
        t = Thread.new { Fiber.new { v.set(:fiber); q << Uvwool::Core.task_id; sleep }.resume }
        refute_equal 0, q.pop
        t.kill.join
        got, task, gen = clean_start(v)
        assert_equal [:main, 0], [got, task]
        gens << gen
        t = Thread.new { v.set(:dying); raise IOError, "boom" }
        t.report_on_exception = false
        assert_raises(IOError) { t.join }
        assert_equal [:main, 0], clean_start(v).first(2)
      end
      GC.start(full_mark: true, immediate_sweep: true)
      assert_equal [:main, 0], clean_start(v).first(2)
      assert_equal :main, v.get
    end
  end
end
