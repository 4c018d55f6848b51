# frozen_string_literal: true

require_relative "helper"

class TestContextVar < Minitest::Test
  include UvwoolTestHelper

  def test_error_tree
    assert_operator Uvwool::WoolError, :<, StandardError
    %i[ChainContention ContextVarCollision TaskFactoryDisplaced SerializationError LookupError].each do |c|
      assert_operator Uvwool.const_get(c), :<, Uvwool::WoolError
    end
    assert_operator Uvwool::ChainSerializationError, :<, Uvwool::SerializationError
  end

  def test_get_default_fallback_and_lookup_error
    plain = fresh_var
    with_default = fresh_var(default: "d")
    nil_default = fresh_var(default: nil)
    isolated do
      e = assert_raises(Uvwool::LookupError) { plain.get }
      assert_equal "UVW_ELOOKUP", e.code
      assert_equal :fb, plain.get(:fb)
      assert_nil plain.get(nil)
      assert_equal "d", with_default.get
      assert_equal "f", with_default.get("f")
      assert_nil nil_default.get
    end
  end

  def test_set_returns_a_single_use_token
    v = fresh_var
    isolated do
      t1 = v.set(1)
      assert_instance_of Uvwool::Token, t1
      assert_same v, t1.var
      assert_same Uvwool::MISSING, t1.old_value
      t2 = v.set(2)
      assert_equal 1, t2.old_value
      v.reset(t2)
      assert_equal 1, v.get
      assert t2.used?
      e = assert_raises(Uvwool::RuntimeError) { v.reset(t2) }
      assert_equal "UVW_ETOKEN_USED", e.code
      assert_equal 1, v.get
      v.reset(t1)
      assert_raises(Uvwool::LookupError) { v.get }
    end
  end

  def test_bad_tokens_raise_and_change_nothing
    a = fresh_var
    b = fresh_var
    isolated do
      ta = a.set(1)
      b.set(2)
      e = assert_raises(Uvwool::ValueError) { b.reset(ta) }
      assert_equal "UVW_ETOKEN_VAR", e.code
      assert_raises(TypeError) { b.reset(42) }
      assert_raises(TypeError) { b.reset(nil) }
      assert_equal [1, 2], [a.get, b.get]
      # A token minted in another context.
      other = Uvwool.copy_context.run { a.set(3) }
      e = assert_raises(Uvwool::ValueError) { a.reset(other) }
      assert_equal "UVW_ETOKEN_CONTEXT", e.code
      assert_equal 1, a.get
      refute ta.used?
    end
  end

  def test_with_block_restores_also_on_exceptions
    v = fresh_var(default: 0)
    isolated do
      assert_equal :r, v.with(5) { assert_equal 5, v.get; :r }
      assert_equal 0, v.get
      assert_raises(KeyError) { v.with(6) { raise KeyError } }
      assert_equal 0, v.get
    end
  end

  def test_collision_names_the_variable
    name = UvwoolTestHelper.next_name
    Uvwool::ContextVar.new("ruby.test", name)
    e = assert_raises(Uvwool::ContextVarCollision) { Uvwool::ContextVar.new("ruby.test", name, default: 1) }
    assert_equal "ruby.test", e.namespace
    assert_equal name, e.var_name
    assert_equal "declaration", e.first_declared_by
  end

  def test_wrong_argument_types
    assert_raises(TypeError) { Uvwool::ContextVar.new(1, "x") }
    assert_raises(TypeError) { Uvwool::ContextVar.new("ruby.test", 7) }
    assert_raises(TypeError) { Uvwool::ContextVar.new("ruby.test", nil) }
    assert_raises(ArgumentError) { fresh_var.get(1, 2) }
    assert_raises(TypeError) { Uvwool::Token.new }
    assert_raises(Uvwool::ValueError) { Uvwool::ContextVar.new("", "x") }
    assert_raises(TypeError) { Uvwool::Core.get("not a var") }
  end

  def test_copy_context_is_a_snapshot
    v = fresh_var
    isolated do
      v.set(1)
      ctx = Uvwool.copy_context
      v.set(2)
      assert_equal 1, ctx.run { v.get }
      ctx.run { v.set(3) }
      assert_equal 2, v.get
      assert_equal 3, ctx.run { v.get }
    end
  end

  def test_run_returns_the_value_and_restores_on_exceptions
    v = fresh_var
    isolated do
      v.set(:outer)
      id = Uvwool.chain_id
      ctx = Uvwool.copy_context
      assert_equal 42, ctx.run { 42 }
      e = assert_raises(ArgumentError) { ctx.run { v.set(:inner); raise ArgumentError, "boom" } }
      assert_equal "boom", e.message
      assert_equal :outer, v.get
      assert_equal id, Uvwool.chain_id
      assert_equal :inner, ctx.run { v.get }
      # break and throw leave the context too.
      assert_equal :b, ctx.run { break :b }
      assert_equal :thrown, catch(:t) { ctx.run { v.set(:x); throw :t, :thrown } }
      assert_equal :outer, v.get
      assert_raises(LocalJumpError) { ctx.run }
      e = assert_raises(Uvwool::RuntimeError) { ctx.run { ctx.run { 1 } } }
      assert_equal "UVW_EENTERED", e.code
      assert_equal :outer, v.get
    end
  end

  def test_chain_id
    v = fresh_var
    isolated do
      assert_nil Uvwool.chain_id
      v.set(1)
      id = Uvwool.chain_id
      assert_match(/\A\h{32}\z/, id)
      # Text, not bytes: bound to a variable it crosses the wire as a string.
      assert_equal Encoding::US_ASCII, id.encoding
      v.set(2)
      assert_equal id, Uvwool.chain_id
      assert_equal id, Uvwool.copy_context.chain_id
    end
  end
end

class TestInstalledGem < Minitest::Test
  def test_loaded_from_the_installed_gem
    core = $LOADED_FEATURES.grep(%r{/uvwool/core\.so\z}).first
    refute_nil core
    assert core.start_with?(ENV.fetch("GEM_HOME")), "#{core} is not under GEM_HOME"
    assert_equal Uvwool::Core.version_string, Uvwool::VERSION
  end
end
