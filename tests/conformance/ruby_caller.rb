# frozen_string_literal: true

# The Ruby caller driver of the conformance matrix (tests/conformance/README.md):
#   ruby ruby_caller.rb ADDRESS SCENARIOS_FILE
# Each scenario runs in a fresh copy of the (empty) top-level context, ops in
# order; a dispatch blocks this fiber until its reply, whose changes are then
# mounted here (apply-back): `expect var` reads there and the next stream
# step is made from there.
require "timeout"
require "uvwool"

address, file = ARGV
abort "usage: ruby_caller.rb ADDRESS SCENARIOS_FILE" unless address && file

Scenario = Struct.new(:id, :ops)
scenarios = []
File.foreach(file) do |raw|
  words = raw.sub(/#.*/, "").split
  next if words.empty?

  if words[0] == "scenario"
    scenarios << Scenario.new(words[1], [])
  else
    scenarios.last.ops << words
  end
end

MISSING = Object.new.tap { |o| def o.inspect = "missing" }.freeze
OPAQUE = Object.new.tap { |o| def o.inspect = "opaque" }.freeze

def unpercent(s) = s.gsub(/%(\h\h)/) { Regexp.last_match(1).hex.chr }.force_encoding(Encoding::UTF_8)

def parse(text)
  case text
  when "nil" then nil
  when "true" then true
  when "false" then false
  when "missing" then MISSING
  when "opaque" then OPAQUE
  when "chain" then Uvwool.chain_id || "<unarmed>"
  when /\Ai:(.*)\z/ then Integer(Regexp.last_match(1), 10)
  when /\Af:(.*)\z/ then Float(Regexp.last_match(1))
  when /\As:(.*)\z/ then unpercent(Regexp.last_match(1))
  when /\Ax:(.*)\z/ then [Regexp.last_match(1)].pack("H*").force_encoding(Encoding::BINARY)
  else raise ArgumentError, "bad value #{text}"
  end
end

def native(v) = v.equal?(OPAQUE) ? Object.new : v

def show(v)
  case v
  when nil then "nil"
  when Integer then "i:#{v}"
  when Float then "f:#{v}"
  when String then v.encoding == Encoding::BINARY ? "x:#{v.unpack1('H*')}" : "s:#{v}"
  else v.inspect
  end
end

# Kinds count: 1 never equals 1.0, bytes (binary) never equal a string.
def same?(a, b)
  return b.equal?(a) if a.equal?(MISSING)
  return false unless a.class == b.class
  return false if a.is_a?(String) && (a.encoding == Encoding::BINARY) != (b.encoding == Encoding::BINARY)

  a == b
end

VARS = {}
def var_named(q)
  VARS[q] ||= begin
    ns, name = q.split(".", 2)
    Uvwool::ContextVar.new(ns, name)
  end
end

STATUS = { "UVW_EREMOTE" => "remote", "UVW_ENACK" => "nack", "UVW_ECANCELED" => "cancelled",
           "UVW_ECONNRESET" => "connreset" }.freeze

Reply = Struct.new(:value, :done, :err, :status)

def status_of(reply)
  return reply.status if reply.status
  return "ok" unless reply.err

  err = reply.err
  s = err.respond_to?(:status) ? err.status : nil
  STATUS.fetch(s, s || err.class.name)
end

def check(op, reply)
  what = op[1]
  return "#{what}: no reply to check" unless reply

  case what
  when "status"
    got = status_of(reply)
    got == op[2] ? nil : "status: want #{op[2]}, got #{got} (#{reply.err&.message})"
  when "done" then reply.done ? nil : "done: not the last"
  when "result"
    want = parse(op[2])
    same?(want, reply.value) ? nil : "result: want #{show(want)}, got #{show(reply.value)}"
  when "var"
    want = parse(op[3])
    got = var_named(op[2]).get(MISSING)
    same?(want, got) ? nil : "var #{op[2]}: want #{show(want)}, got #{show(got)}"
  when /\Aerror\./
    e = reply.err
    return "#{what}: no error" unless e

    want = unpercent(op.last)
    got = case what
          when "error.message" then e.message.include?(want) ? want : e.message
          when "error.code" then e.respond_to?(:code) ? e.code : nil
          else e.respond_to?(:fields) ? e.fields[op[2]] : nil
          end
    got == want ? nil : "#{what}: want #{want}, got #{got.inspect}"
  else "unknown expectation #{what}"
  end
end

# The step as a Reply: a routine's error, a refusal or a lost connection
# are the reply's error, not the driver's.
def step
  Reply.new(*yield)
rescue StopIteration => e
  Reply.new(e.result, true)
rescue Uvwool::WoolError => e
  Reply.new(nil, true, e)
end

def run_scenario(conn, sc)
  reply = nil
  stream = nil
  sc.ops.each_with_index do |op, i|
    kind = op[0]
    case kind
    when "set" then var_named(op[1]).set(native(parse(op[2])))
    when "expect"
      why = check(op, reply)
      return ["not ok", why] if why
    when "cancel" then nil # made by the call above it
    else
      return ["not ok", "status: want ok, got #{status_of(reply)}"] if reply&.err && kind != "call"

      args = (op[2..] || []).map { |w| native(parse(w)) }
      reply = case kind
              when "call"
                if sc.ops[i + 1]&.first == "cancel"
                  # Ruby cancels a waiting dispatch by interrupting it
                  # (Timeout, Thread#raise): the worker is told.
                  begin
                    Timeout.timeout(0.2) { conn.dispatch(op[1], *args) }
                    Reply.new(nil, true, nil, "answered")
                  rescue Timeout::Error
                    Reply.new(nil, true, nil, "cancelled")
                  end
                else
                  step { [conn.dispatch(op[1], *args), true] }
                end
              when "stream"
                stream = conn.stream(op[1], *args)
                nil
              else
                return ["not ok", "#{kind}: no open stream"] unless stream

                case kind
                when "next" then step { [stream.next, false] }
                when "send" then step { [stream.send_value(parse(op[1])), false] }
                else step { [stream.throw(RuntimeError.new(unpercent(op[1]))), false] }
                end
              end
    end
  end
  stream&.close
  ["ok"]
end

failures = 0
Uvwool::Connection.open(address, timeout: 5000) do |conn|
  # Declared up front, as an application declares its variables at load.
  scenarios.each { |sc| sc.ops.each { |op| var_named(op[1]) if op[0] == "set" } }
  scenarios.each do |sc|
    verdict = begin
      Uvwool.copy_context.run { run_scenario(conn, sc) }
    rescue StandardError => e
      ["not ok", "raised #{e.class}: #{e.message}"]
    end
    failures += 1 if verdict[0] == "not ok"
    puts [verdict[0], sc.id].join(" ") + (verdict[1] ? ": #{verdict[1]}" : "")
    $stdout.flush
  end
end
exit(failures.zero? ? 0 : 1)
