# frozen_string_literal: true

require_relative "helper"

class TestGC < Minitest::Test
  include UvwoolTestHelper

  def set_and_reset(var, weak, count)
    count.times do |i|
      obj = Object.new
      weak[i] = obj
      var.reset(var.set(obj))
    end
  end

  def test_nothing_is_kept_after_reset
    v = fresh_var
    weak = ObjectSpace::WeakMap.new
    isolated do
      base = Uvwool::Core.held_objects
      t = v.set(Object.new)
      assert_equal base + 1, Uvwool::Core.held_objects
      v.reset(t)
      assert_equal base, Uvwool::Core.held_objects
      set_and_reset(v, weak, 50)
      assert_equal base, Uvwool::Core.held_objects
    end
    3.times { GC.start(full_mark: true, immediate_sweep: true) }
    alive = (0...50).count { |i| weak.key?(i) }
    # The conservative stack scan may keep the last one or two alive.
    assert_operator alive, :<=, 2
  end

  def fill_contexts(var, weak, count)
    count.times do |i|
      obj = Object.new
      weak[i] = obj
      Uvwool::Core.context_new.run { var.set(obj) }
    end
  end

  def test_dropped_contexts_release_their_objects
    v = fresh_var
    weak = ObjectSpace::WeakMap.new
    3.times { GC.start(full_mark: true, immediate_sweep: true) }
    base = Uvwool::Core.held_objects
    fill_contexts(v, weak, 20)
    assert_operator Uvwool::Core.held_objects, :>=, base + 1
    3.times { GC.start(full_mark: true, immediate_sweep: true) }
    # The conservative stack scan may keep the last one or two alive.
    assert_operator Uvwool::Core.held_objects, :<=, base + 2
    assert_operator (0...20).count { |i| weak.key?(i) }, :<=, 2
  end

  def make_unresumed_fibers(var, count)
    count.times { |i| var.with(Object.new) { Fiber.new { i } } }
  end

  # A fiber's fork holds its creator's values; a fiber that is never
  # resumed gives them up once collected, also while it is in its thread's
  # list of fresh fibers (ext/uvwool/fibers.c).
  def test_fibers_never_resumed_release_their_fork_when_collected
    v = fresh_var
    3.times { GC.start(full_mark: true, immediate_sweep: true) }
    base = Uvwool::Core.held_objects
    isolated { make_unresumed_fibers(v, 40) }
    assert_operator Uvwool::Core.held_objects, :>=, base + 40
    4.times { GC.start(full_mark: true, immediate_sweep: true) }
    # The conservative stack scan may keep a few alive (the fresh list
    # alone would keep 16).
    assert_operator Uvwool::Core.held_objects, :<=, base + 6
  end

  # A GC at every allocation: any VALUE the extension holds without marking
  # it (values, tokens, fiber slots, thread forks, the error fields) is
  # collected and reused at once.
  def test_under_gc_stress
    v = fresh_var
    w = fresh_var(default: "dflt")
    res = []
    begin
      GC.stress = true
      3.times do |i|
        isolated do
          t = v.set(Object.new.tap { |o| o.instance_variable_set(:@i, "s#{i}") })
          f = Fiber.new { v.set([i, "x" * 10]); Fiber.yield v.get; w.get }
          a = f.resume
          e = [1, 2].each
          e.next
          th = Thread.new { v.get.instance_variable_get(:@i) }
          res << [a, f.resume, th.value, v.get.instance_variable_get(:@i), t.old_value]
          v.reset(t)
          res << (begin; v.reset(t); rescue Uvwool::WoolError => err; err.code; end)
        end
      end
    ensure
      GC.stress = false
    end
    3.times do |i|
      assert_equal [[i, "x" * 10], "dflt", "s#{i}", "s#{i}", Uvwool::MISSING], res[2 * i]
      assert_equal "UVW_ETOKEN_USED", res[2 * i + 1]
    end
  end
end
