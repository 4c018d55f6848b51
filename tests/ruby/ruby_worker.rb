# frozen_string_literal: true

# A uvwool worker written in Ruby (Uvwool::Worker), started as a separate
# process by test_worker.rb: ruby ruby_worker.rb ADDRESS. It prints
# "listening on ADDRESS" once it serves, "on_error: CLASS CODE" for each peer
# error, and serves until SIGTERM.
require "uvwool"

REQUEST = Uvwool::ContextVar.new("t", "request_id")
TENANT = Uvwool::ContextVar.new("t", "tenant")
COUNTER = Uvwool::ContextVar.new("t", "counter")

# An application error with structured fields, as a routine raises it.
class AppError < StandardError
  def fields = { "order" => "42", "reason" => "out of stock" }
end

$stdout.sync = true
worker = Uvwool::Worker.new(limits: { max_chains: 4 }, dispatch_timeout: 3000,
                            on_error: ->(e) { puts "on_error: #{e.class} #{e.code}" })

worker.routine("echo") { |v = nil| v }
worker.routine("kinds") { |*args| args.map { |a| a.class.name }.join(",") }
worker.routine("read_and_mutate") do |n|
  seen = REQUEST.get("-")
  REQUEST.set("#{seen}+ruby")
  COUNTER.set(n + 1)
  "saw:#{seen}"
end
# A set made and reset inside the routine: the caller sees the reset (its own
# value), and the other set.
worker.routine("set_and_reset") do
  token = TENANT.set("temporary")
  REQUEST.set("seen tenant #{TENANT.get}")
  TENANT.reset(token)
  nil
end
worker.routine("raise_after_set") do
  REQUEST.set("set-before-raise")
  raise AppError, "no such order"
end
# The wrong offload: another thread handed the routine's own context.
worker.routine("offload_plain") do
  ctx = Uvwool.copy_context
  Thread.new do
    Thread.current.report_on_exception = false # its exception is the routine's
    ctx.run { "thread saw #{REQUEST.get('-')}" }
  end.value
end
# The right one: Thread.new runs its block in a detached fork of the routine's
# context (the binding's to_thread).
worker.routine("offload_to_thread") do
  Thread.new { "thread saw #{REQUEST.get('-')}" }.value
end
# Routines that answer later: at once through the Call, or when cancelled.
worker.routine("later_echo", answer: :later) { |call, v| call.return(v) }
cancelled = []
worker.routine("hang", answer: :later) do |call|
  call.on_cancel do
    cancelled << REQUEST.get("-")
    call.raise(RuntimeError.new("hang was cancelled"))
  end
end
worker.routine("cancelled") { cancelled.join(",") }
worker.routine("raise_unconvertible") { raise ArgumentError, "nul\0inside" }
worker.routine("limits") { worker.limits[:max_chains] }

# ---- streaming routines (test_worker_stream.rb) ----
PHASE = Uvwool::ContextVar.new("t", "phase")
# A set before the first yield, kept across the steps (each reads the
# caller's values of that step) and reset after the second one, also when
# a throw ends the stream at a yield.
worker.stream("phases") do |y, start|
  token = PHASE.set(start)
  begin
    sent = y.yield(PHASE.get)
    got = y.yield("#{sent}/#{PHASE.get}/#{REQUEST.get('-')}")
  ensure
    PHASE.reset(token)
  end
  "reset:#{PHASE.get('-')}:#{got.inspect}"
end
# A throw rescued at the yield: the stream goes on.
worker.stream("catch_throw") do |y|
  y.yield("ready")
rescue Uvwool::WoolError => e
  y.yield("caught #{e.class}: #{e.message} (#{e.code}, #{e.wire_type})")
  "after the throw"
end
worker.stream("fail_on_second") do |y|
  y.yield("first")
  REQUEST.set("set-before-raise")
  raise AppError, "the stream broke"
end
# Sums what it is sent until a next (nil); its own tenant per stream.
worker.stream("tally") do |y, name|
  total = 0
  while (n = y.yield("#{name}=#{total}"))
    total += n
    TENANT.set("#{name}-#{total}")
  end
  "#{name} done at #{total}"
end
# Held between its steps; how it ended is logged for stream_endings.
endings = []
worker.stream("held") do |y|
  y.yield("held")
  y.yield("again")
rescue Uvwool::WoolError => e
  endings << "#{e.code}:#{REQUEST.get('-')}"
  raise
end
worker.routine("stream_endings") { endings.join(",") }
# The step's own context: the caller's chain; a fiber it starts has its own.
worker.stream("chain_ids") do |y|
  inner = Fiber.new do
    TENANT.set("inner fiber")
    Uvwool.chain_id
  end.resume
  y.yield("#{Uvwool.chain_id} #{inner == Uvwool.chain_id} #{TENANT.get('-')}")
  Uvwool.chain_id
end
# Refused: what the block cannot do.
worker.stream("unconvertible_yield") do |y|
  y.yield(Object.new)
rescue Uvwool::SerializationError => e
  endings << "yield raised #{e.class}"
  raise
end
worker.stream("yield_in_run") { |y| Uvwool.copy_context.run { y.yield(1) } }
worker.stream("bare_fiber_yield") { Fiber.yield(1) }
kept = nil
worker.stream("keep_yielder") { |y| (kept = y) and nil }
worker.routine("yield_outside") { kept.yield(1) }
worker.routine("dispatches") { worker.stats[:dispatches] }

worker.listen(ARGV.fetch(0))
Signal.trap("TERM") { worker.stop }
puts "listening on #{worker.address(0)}"
worker.run
worker.close
puts "closed"
