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
worker.routine("dispatches") { worker.stats[:dispatches] }

worker.listen(ARGV.fetch(0))
Signal.trap("TERM") { worker.stop }
puts "listening on #{worker.address(0)}"
worker.run
worker.close
puts "closed"
