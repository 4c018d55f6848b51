# frozen_string_literal: true

# Ruby binding benchmarks, side by side in one run (not part of the tests):
#   GEM_HOME=<build>/tests/ruby/gem/gems GEM_PATH=$GEM_HOME:$(ruby -e 'print Gem.default_path.join(":")') \
#     ruby tests/bench/ruby/bench_ruby.rb [iterations]
# (the gem as ruby.gem installs it). Figures are ns per operation, net of an
# empty loop; fiber creation without uvwool runs in a child ruby that never
# loads it. Run it on a quiet machine only.
N = Integer(ARGV[0] || 2_000_000)

def clock = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)

def measure(n)
  t0 = clock
  i = 0
  while i < n
    yield
    i += 1
  end
  clock - t0
end

def net(n, empty, &blk) = ((measure(n, &blk) - empty).to_f / n).round(1)

FIBER_N = [N / 20, 1000].max
fiber_plain = `#{RbConfig.ruby} -e '
  def clock = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
  n = #{FIBER_N}; t0 = clock; i = 0
  while i < n; Fiber.new { 1 }.resume; i += 1; end
  print((clock - t0).to_f / n)'`.to_f

require "uvwool"
VAR = Uvwool::ContextVar.new("bench", "x")
VAR.set(1)
Thread.current[:x] = 1
Thread.current.thread_variable_set(:x, 1)
empty = measure(N) {}
rows = {
  "var.get" => net(N, empty) { VAR.get },
  "Thread.current[:x]" => net(N, empty) { Thread.current[:x] },
  "thread_variable_get(:x)" => net(N, empty) { Thread.current.thread_variable_get(:x) },
  "var.set + var.reset" => net(N, empty) { VAR.reset(VAR.set(2)) },
  "Fiber.new { }.resume, without uvwool" => fiber_plain.round(1),
  "Fiber.new { }.resume, with the fork" => ((measure(FIBER_N) { Fiber.new { 1 }.resume }).to_f / FIBER_N).round(1)
}
w = rows.keys.map(&:size).max
puts "uvwool #{Uvwool::VERSION}, ruby #{RUBY_VERSION}, #{N} iterations (ns/op)"
rows.each { |k, v| puts "#{k.ljust(w)}  #{v}" }
puts "var.get / Thread.current[:x]: #{(rows["var.get"] / rows["Thread.current[:x]"]).round(2)}x; " \
     "fiber fork cost: +#{(rows["Fiber.new { }.resume, with the fork"] - fiber_plain).round(1)} ns"
