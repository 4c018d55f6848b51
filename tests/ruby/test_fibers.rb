# frozen_string_literal: true

require_relative "helper"
require "async"

class TestFibers < Minitest::Test
  include UvwoolTestHelper

  def test_fiber_new_forks_at_creation
    v = fresh_var
    isolated do
      v.set(1)
      f = Fiber.new { v.get }
      v.set(2)
      assert_equal 1, f.resume
    end
  end

  def test_fiber_writes_never_reach_the_creator
    v = fresh_var
    isolated do
      v.set(:creator)
      outer_id = Uvwool.chain_id
      f = Fiber.new do
        v.set(:fiber)
        Fiber.yield [v.get, Uvwool.chain_id, Uvwool::Core.task_id]
        v.get
      end
      got, fiber_id, task = f.resume
      assert_equal :fiber, got
      refute_equal outer_id, fiber_id
      refute_equal 0, task
      assert_equal 0, Uvwool::Core.task_id
      assert_equal :creator, v.get
      assert_equal outer_id, Uvwool.chain_id
      assert_equal :fiber, f.resume # its own value across the yield
      assert_equal :creator, v.get
    end
  end

  def test_nested_fibers
    v = fresh_var
    isolated do
      v.set(0)
      inner = nil
      outer = Fiber.new do
        v.set(1)
        inner = Fiber.new { v.set(2); Fiber.yield v.get; v.get }
        a = inner.resume
        Fiber.yield [a, v.get]
        [inner.resume, v.get]
      end
      assert_equal [2, 1], outer.resume
      assert_equal 0, v.get
      assert_equal [2, 1], outer.resume
      assert_equal 0, v.get
    end
  end

  def test_enumerator_external_iteration
    v = fresh_var
    isolated do
      v.set(1)
      e = Enumerator.new do |y|
        y << v.get
        v.set(5)
        y << v.get
      end
      assert_equal 1, e.next
      assert_equal 1, v.get
      assert_equal 5, e.next
      assert_equal 1, v.get
    end
  end

  def test_async_tasks_and_fiber_schedule
    v = fresh_var
    isolated do
      v.set(:root)
      Async do
        assert_equal :root, v.get
        v.set(:reactor)
        t = Async do
          v.set(:task)
          sleep 0.001
          v.get
        end
        s = Fiber.schedule do
          seen = v.get
          v.set(:scheduled)
          seen
        end
        assert_equal :reactor, v.get
        assert_equal :task, t.wait
        assert_equal :reactor, v.get
        assert s
      end.wait
      assert_equal :root, v.get
    end
  end

  def test_fiber_schedule_sees_its_creator
    v = fresh_var
    isolated do
      seen = []
      Async do
        v.set(:creator)
        done = Async::Condition.new
        Fiber.schedule do
          seen << v.get
          v.set(:changed)
          sleep 0.001
          seen << v.get
          done.signal
        end
        done.wait
        seen << v.get
      end.wait
      assert_equal %i[creator changed creator], seen
    end
  end

  def test_two_live_fibers_sharing_an_armed_context_contend
    v = fresh_var
    isolated do
      ctx = Uvwool::Core.context_new
      f1 = Fiber.new do
        ctx.run { v.set(1) }
        Fiber.yield
        :f1_done
      end
      f1.resume
      f2 = Fiber.new { ctx.run { v.get } }
      e = assert_raises(Uvwool::ChainContention) { f2.resume }
      assert_equal "task", e.kind
      assert_equal ctx.chain_id, e.chain_id
      refute_equal e.owner_task, e.offending_task
      assert_equal :f1_done, f1.resume
      # f1 ended, so it owns nothing any more.
      assert_equal 1, Fiber.new { ctx.run { v.get } }.resume
    end
  end

  def test_compaction_while_fibers_are_suspended
    v = fresh_var
    isolated do
      v.set(0)
      results = []
      fibers = Array.new(8) do |i|
        Fiber.new do
          v.set(i)
          inner = Fiber.new { v.set(i * 10); GC.compact; GC.start(full_mark: true); Fiber.yield v.get; v.get }
          results << inner.resume << v.get
          Fiber.yield
          results << inner.resume << v.get
        end
      end
      fibers.each(&:resume)
      GC.compact
      fibers.each(&:resume)
      assert_equal 0, v.get
      expected = (0...8).flat_map { |i| [i * 10, i] } * 2
      assert_equal expected.sort, results.sort
      assert_equal (0...8).flat_map { |i| [i * 10, i] }, results.first(16)
    end
  end
end
