# frozen_string_literal: true

require_relative "helper"
require "uvwool/otel"

class TestBaggagePropagator < Minitest::Test
  include UvwoolTestHelper

  TENANT = Uvwool::ContextVar.new("acme", "tenant")
  DOTTED = Uvwool::ContextVar.new("my.app", "user")
  SECRET = Uvwool::ContextVar.new("acme", "secret").tap do |v|
    v.policy = Uvwool::PROPAGATE_ALL & ~Uvwool::PROPAGATE_BAGGAGE
  end
  COUNT = Uvwool::ContextVar.new("acme", "count")

  def prop = Uvwool::OTel::BaggagePropagator.new

  def test_inject_writes_the_string_variables_with_the_baggage_policy
    isolated do
      TENANT.set("t 1")
      DOTTED.set("u")
      SECRET.set("hidden")
      COUNT.set(3)
      carrier = prop.inject({})
      assert_equal "acme.tenant=t%201,my%2Eapp.user=u", carrier["baggage"]
      assert_equal ["baggage"], prop.fields
    end
  end

  def test_inject_of_nothing_leaves_the_carrier_alone
    isolated { assert_equal({}, prop.inject({})) }
  end

  def test_extract_gives_a_copy_with_the_members_and_keeps_foreign_ones
    isolated do
      ctx = prop.extract({ "baggage" => "acme.tenant=t-2,vendor=x;p=1,acme.secret=no" })
      assert_equal "t-2", ctx.run { TENANT.get }
      assert_equal :unbound, ctx.run { SECRET.get(:unbound) }, "a variable without the policy is never bound"
      assert_equal :unbound, TENANT.get(:unbound), "the current context is unchanged"
      assert_equal "acme.tenant=t-2,vendor=x;p=1", prop.inject({}, context: ctx)["baggage"]
    end
  end

  def test_a_custom_getter_and_setter
    getter = Object.new.tap { |g| def g.get(c, k) = c["HTTP_#{k.upcase}"] }
    setter = Object.new.tap { |s| def s.set(c, k, v) = c << [k, v] }
    isolated do
      ctx = prop.extract({ "HTTP_BAGGAGE" => "acme.tenant=env" }, getter: getter)
      assert_equal [["baggage", "acme.tenant=env"]], prop.inject([], context: ctx, setter: setter)
    end
  end

  def test_a_bad_member_warns_through_warning_and_is_skipped
    seen = []
    Warning.singleton_class.alias_method(:__saved_warn, :warn)
    Warning.define_singleton_method(:warn) { |msg, category: nil| seen << [msg, category] }
    begin
      isolated do
        ctx = prop.extract({ "baggage" => "acme.tenant=%zz" })
        assert_equal :unbound, ctx.run { TENANT.get(:unbound) }
      end
    ensure
      Warning.singleton_class.alias_method(:warn, :__saved_warn)
    end
    assert_equal 1, seen.size, seen.inspect
    assert_match(/\Auvwool: SerializationWarning: .*\(acme, tenant\)/m, seen[0][0])
    assert_equal :uvwool, seen[0][1]
  end

  def test_a_wrong_type_raises
    isolated { assert_raises(TypeError) { prop.extract({ "baggage" => 42 }) } }
  end

  def test_a_policy_with_unknown_bits_is_refused
    e = assert_raises(Uvwool::WoolError) { TENANT.policy = 0x100 }
    assert_equal "UVW_EINVAL", e.code
    assert_equal Uvwool::PROPAGATE_ALL, TENANT.policy
  end
end

class TestOTelContext < Minitest::Test
  include UvwoolTestHelper

  C = Uvwool::OTel::Context
  KEY = C.create_key("span")

  def test_attach_returns_a_token_and_detach_restores
    isolated do
      assert_same C::ROOT, C.current
      outer = C.current.set_value(KEY, "a")
      t1 = C.attach(outer)
      t2 = C.attach(outer.set_value(KEY, "b"))
      assert_equal "b", C.value(KEY)
      assert C.detach(t2)
      assert_same outer, C.current
      assert C.detach(t1)
      assert_same C::ROOT, C.current
    end
  end

  def test_with_value_and_with_current
    isolated do
      got = C.with_value(KEY, "v") { |ctx, v| [ctx.value(KEY), v, KEY.get] }
      assert_equal %w[v v v], got
      assert_nil C.value(KEY)
      assert_raises(KeyError) { C.with_value(KEY, "x") { raise KeyError } }
      assert_nil C.value(KEY), "restored after an exception"
    end
  end

  def test_the_current_context_follows_fibers_threads_and_enumerators
    isolated do
      C.with_value(KEY, "parent") do
        assert_equal "parent", Fiber.new { KEY.get }.resume
        assert_equal "parent", Thread.new { KEY.get }.value
        assert_equal "parent", Enumerator.new { |y| y << KEY.get }.next
        Fiber.new { C.attach(C.current.set_value(KEY, "child")) }.resume
        assert_equal "parent", KEY.get, "a fiber's attach stays in the fiber"
      end
    end
  end

  def test_a_mismatched_detach_returns_false_and_changes_nothing
    isolated do
      t = C.attach(C.current.set_value(KEY, "a"))
      assert C.detach(t)
      C.attach(C.current.set_value(KEY, "b"))
      assert_output(nil, /uvwool: WoolWarning: calls to detach should match/) { refute C.detach(t) }
      assert_equal "b", C.value(KEY)
      other = Fiber.new { C.attach(C.current.set_value(KEY, "c")) }.resume
      assert_output(nil, /detach should match/) { refute C.detach(other) }
      assert_equal "b", C.value(KEY)
      assert_raises(TypeError) { C.detach(1) }
      assert_equal "b", C.value(KEY)
    end
  end

  # The shape of OpenTelemetry::Context: a fiber-local stack, which a new
  # Fiber does not inherit.
  def otel_like_class
    Class.new do
      const_set(:ROOT, new.freeze)
      class << self
        def stack = (Thread.current[:__otel_like_stack__] ||= [])
        def current = stack.last || self::ROOT
        def attach(ctx) = stack.push(ctx).size
        def detach(_token) = !stack.pop.nil?
        def clear = stack.clear
        def empty = self::ROOT
      end
    end
  end

  def test_install_keeps_an_otel_context_class_in_the_variable
    plain = otel_like_class
    ctx = plain.new
    plain.attach(ctx)
    refute_same ctx, Fiber.new { plain.current }.resume, "without uvwool a Fiber loses it"
    plain.clear
    installed = Uvwool::OTel.install(otel_like_class)
    isolated do
      token = installed.attach(ctx)
      assert_same ctx, Fiber.new { installed.current }.resume
      assert installed.detach(token)
      assert_same installed::ROOT, installed.current
    end
  end
end
