# frozen_string_literal: true

# The Ruby worker of the conformance matrix: the routines every worker hosts
# (tests/conformance/README.md) on Uvwool::Worker, listening on ARGV[0].
require "uvwool"

V = %w[request_id tenant counter value back phase].to_h { |n| [n, Uvwool::ContextVar.new("conf", n)] }
UNBOUND = Object.new.freeze

# An application error with structured fields, as a routine raises it.
class ConfError < StandardError
  def initialize(message, fields)
    super(message)
    @fields = fields
  end

  attr_reader :fields
end

worker = Uvwool::Worker.new
worker.routine("conf.echo") { |v = nil| v }
worker.routine("conf.reflect") do
  v = V["value"].get(UNBOUND)
  next "<missing>" if v.equal?(UNBOUND)

  V["back"].set(v)
  v
end
worker.routine("conf.mutate") do
  V["tenant"].set("#{V['tenant'].get('')}+w")
  V["counter"].set(V["counter"].get(0) + 1)
  V["request_id"].get("<missing>")
end
worker.routine("conf.raise_after_set") do
  before = V["tenant"].get("")
  V["tenant"].set("raised")
  raise ConfError.new("conf failure", { "reason" => "asked", "tenant" => before })
end
# The wrong offload: another thread handed the routine's own context.
worker.routine("conf.offload_plain") do
  ctx = Uvwool.copy_context
  Thread.new do
    Thread.current.report_on_exception = false # its exception is the routine's
    ctx.run { V["request_id"].get("<missing>") }
  end.value
end
# The right one: Thread.new runs in a detached fork (the binding's to_thread).
worker.routine("conf.offload_to_thread") { Thread.new { V["request_id"].get("<missing>") }.value }
worker.routine("conf.bind_opaque") do
  V["back"].set(Object.new)
  V["tenant"].set("after-opaque")
  "bound"
end
# The token set at the first step is reset at the last one, or at a throw
# (raised at the pending yield) before the error goes back.
worker.stream("conf.phases") do |y|
  token = V["phase"].set("streaming")
  begin
    sent = y.yield(1)
    y.yield("#{sent}/#{V['phase'].get('')}")
  rescue Uvwool::WoolError => e
    raise e.message
  ensure
    V["phase"].reset(token)
  end
  "done"
end
# The exit waits ~20 ms so that the first answer is written; a later step is
# never answered: the process ends there.
worker.stream("conf.die_after_one") do |y|
  Thread.new do
    sleep 0.02
    exit!(0)
  end
  y.yield(1)
  exit!(0)
end
cancelled = 0
worker.routine("conf.hang", answer: :later) do |call|
  call.on_cancel do
    cancelled += 1
    call.raise(RuntimeError.new("conf.hang was cancelled"))
  end
end
worker.routine("conf.cancelled_count") { cancelled }
worker.routine("conf.chain_id") { Uvwool.chain_id || "<unarmed>" }
# A connection per hop (a Connection runs its own loop: this worker waits).
worker.routine("conf.hop") do |address, routine|
  Uvwool::Connection.open(address) { |conn| conn.dispatch(routine) }
ensure
  V["tenant"].set("#{V['tenant'].get('')}+hop")
end

worker.listen(ARGV.fetch(0))
Signal.trap("TERM") { worker.stop }
$stdout.sync = true
puts "listening on #{worker.address(0)}"
worker.run
worker.close
