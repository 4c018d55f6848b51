# frozen_string_literal: true

require_relative "helper"

class TestValues < Minitest::Test
  include UvwoolTestHelper

  def roundtrip(value)
    v = fresh_var
    isolated do
      v.set(value)
      v.get
    end
  end

  def test_scalars_round_trip_with_their_classes
    [nil, true, false, 0, -1, 42, 2**62, 2**63 - 1, -2**63, 1.5, -0.0, Float::INFINITY].each do |x|
      got = roundtrip(x)
      assert_equal x.class, got.class, "class of #{x.inspect}"
      assert(x.eql?(got), "#{x.inspect} came back as #{got.inspect}")
    end
    assert_equal(-0.0.to_s, roundtrip(-0.0).to_s)
    assert roundtrip(Float::NAN).nan?
    # 1 and 1.0 stay distinct.
    assert_kind_of Integer, roundtrip(1)
    assert_kind_of Float, roundtrip(1.0)
  end

  def test_integers_beyond_int64_raise_range_error_and_change_nothing
    v = fresh_var
    isolated do
      v.set(7)
      [2**63, -2**63 - 1, 10**30].each do |big|
        e = assert_raises(RangeError) { v.set(big) }
        assert_match(/outside int64/, e.message)
        assert_equal 7, v.get
      end
    end
  end

  def test_strings
    utf8 = roundtrip("héllo \u{1F600}")
    assert_equal "héllo \u{1F600}", utf8
    assert_equal Encoding::UTF_8, utf8.encoding
    bin = "\x00\xff\xfe ab".b
    got = roundtrip(bin)
    assert_equal Encoding::ASCII_8BIT, got.encoding
    assert_equal bin, got
    # Other encodings arrive as UTF-8 strings with the same characters.
    latin = (+"caf\xe9").force_encoding(Encoding::ISO_8859_1)
    got = roundtrip(latin)
    assert_equal Encoding::UTF_8, got.encoding
    assert_equal "café", got
    assert_equal "plain", roundtrip("plain".encode(Encoding::US_ASCII))
    # NUL bytes survive in text strings too.
    assert_equal "a\0b", roundtrip("a\0b")
  end

  def test_broken_strings_raise_and_change_nothing
    v = fresh_var
    isolated do
      v.set("ok")
      assert_raises(EncodingError) { v.set("bad \xff".dup.force_encoding(Encoding::UTF_8)) }
      assert_equal "ok", v.get
    end
  end

  def test_other_objects_are_stored_by_identity
    v = fresh_var
    obj = Object.new
    sym_and_more = [:sym, 1..2, [1, 2], { a: 1 }, obj]
    sym_and_more.each do |x|
      assert_same x, roundtrip(x)
    end
  end

  # Built in a separate frame so that only uvwool holds the objects.
  def store_payloads(var, count)
    count.times.map do |i|
      var.set(Struct.new(:payload).new("payload-#{i}" * 10))
    end
  end

  def test_opaque_values_survive_full_gc_and_compaction
    vars = Array.new(20) { fresh_var }
    isolated do
      vars.each_with_index { |v, i| store_payloads(v, 1) && i }
      assert_operator Uvwool::Core.held_objects, :>=, 20
      GC.start(full_mark: true, immediate_sweep: true)
      GC.compact if GC.respond_to?(:compact)
      GC.start(full_mark: true, immediate_sweep: true)
      vars.each do |v|
        assert_equal "payload-0" * 10, v.get.payload
      end
      assert_operator Uvwool::Core.held_objects, :>=, 20
    end
  end
end
