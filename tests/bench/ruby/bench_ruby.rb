# frozen_string_literal: true

# Ruby binding benchmarks, side by side in one run (not part of the tests):
#   GEM_HOME=<build>/tests/ruby/gem/gems GEM_PATH=$GEM_HOME:$(ruby -e 'print Gem.default_path.join(":")') \
#     ruby -I <build>/tests/ruby/gem/sample tests/bench/ruby/bench_ruby.rb [iterations]
# (the gem as ruby.gem installs it; -I the extension sample ruby.sample
# builds, for the libuv callback rows). Figures are ns per operation, net of
# an empty loop; fiber creation without uvwool runs in a child ruby that
# never loads it. Run it on a quiet machine only: ruby.bench runs it with a
# few iterations to check that it works, and its figures mean nothing.
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
# One timed run of n operations, ns per operation.
def per(n)
  t0 = clock
  yield
  ((clock - t0).to_f / n).round(1)
end

FIBER_N = [N / 20, 100].max
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

# A libuv callback into a Ruby block (the loop of samples/ruby_ext runs
# without the GVL; each callback takes it): against the bare GVL re-take.
CB_N = [N / 10, 100].max
begin
  require "uvwool_sample"
  noop = proc {}
  rows["GVL re-take, nothing run"] = per(CB_N) { UvwoolSample.gvl_retakes(CB_N) }
  rows["GVL re-take + block call"] = per(CB_N) { UvwoolSample.gvl_retakes(CB_N, noop) }
  rows["libuv idle callback + block, plain uv_idle_start"] =
    per(CB_N) { UvwoolSample::Loop.new.repeat(CB_N, true, &noop).run }
  rows["libuv idle callback + block, uvw_idle_start"] =
    per(CB_N) { UvwoolSample::Loop.new.repeat(CB_N, &noop).run }
rescue LoadError
  puts "(no uvwool_sample on the load path: the libuv callback rows are left out)"
end

w = rows.keys.map(&:size).max
puts "uvwool #{Uvwool::VERSION}, ruby #{RUBY_VERSION}, #{N} iterations (ns/op)"
rows.each { |k, v| puts "#{k.ljust(w)}  #{v}" }

def ratio(a, b) = b.positive? ? "#{(a / b).round(2)}x" : "n/a"

puts "var.get: #{rows["var.get"]} ns (target: within 60 ns); " \
     "#{ratio(rows["var.get"], rows["Thread.current[:x]"])} Thread.current[:x], " \
     "#{ratio(rows["var.get"], rows["thread_variable_get(:x)"])} thread_variable_get"
puts "fiber fork: +#{(rows["Fiber.new { }.resume, with the fork"] - fiber_plain).round(1)} ns per fiber " \
     "(target: within +200 ns); #{ratio(rows["Fiber.new { }.resume, with the fork"], fiber_plain)} a plain fiber"
if rows.key?("GVL re-take + block call")
  cb = rows["libuv idle callback + block, uvw_idle_start"]
  puts "libuv callback into Ruby: #{cb} ns, #{ratio(cb, rows["GVL re-take + block call"])} a bare GVL re-take " \
       "with the block, +#{(cb - rows["libuv idle callback + block, plain uv_idle_start"]).round(1)} ns for uvwool's capture"
end
