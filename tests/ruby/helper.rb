# frozen_string_literal: true

# Shared by the Ruby tests: they run against the gem installed from the
# built .gem (GEM_HOME set by CTest), never against the source tree.
require "minitest/autorun"
require "uvwool"

module UvwoolTestHelper
  @seq = 0
  # Variables live for the process: each test declares its own.
  def self.next_name = "v#{Process.pid}_#{@seq += 1}"

  def fresh_var(**kw) = Uvwool::ContextVar.new("ruby.test", UvwoolTestHelper.next_name, **kw)

  # Runs the block in a new empty context, so that tests do not see each
  # other's bindings in the main thread's context.
  def isolated(&blk) = Uvwool::Core.context_new.run(&blk)
end
