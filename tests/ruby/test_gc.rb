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
end
