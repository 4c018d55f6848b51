# frozen_string_literal: true

# uvwool for Ruby: context variables with Python's contextvars semantics
# (docs/semantics.md, docs/ruby.md). Uvwool::Core is the SWIG-generated low
# layer (ext/uvwool); this file is the idiomatic layer over it.
require "uvwool/core"

module Uvwool
  VERSION = Core.version_string

  # The "no default given" marker of ContextVar.new.
  UNSET = Object.new.tap { |o| def o.inspect = "Uvwool::UNSET" }.freeze
  private_constant :UNSET

  Context = Core::Context

  # The base of every uvwool exception; the structured fields of the C
  # detail record are in #fields and behind the readers below.
  class WoolError
    FIELD_READERS = %w[chain_id kind owner_thread offending_thread owner_task offending_task
                       operation variable owner_os_thread owner_thread_name runner_os_thread
                       runner_thread_name hint namespace first_declared_by first_declared_at
                       existing_default entered_thread entered_os_thread entered_thread_name
                       wire_type].freeze

    # "UVW_ECONTENTION", ... and the negative C code. A dispatch's error also
    # has #status: "UVW_EREMOTE" (the routine raised), "UVW_ENACK",
    # "UVW_ECONNRESET", ...
    attr_reader :code, :errno, :status

    def fields = @fields || {}.freeze

    FIELD_READERS.each { |f| define_method(f) { fields[f] } }
    # ContextVarCollision's variable name (Exception has no #name).
    def var_name = fields["name"]
  end

  # A single-use token from ContextVar#set, consumed by ContextVar#reset;
  # #var, #old_value (Uvwool::MISSING when the variable was unbound) and
  # #used? are C (ext/uvwool/vars.c).
  class Token
    def inspect = "#<Uvwool::Token var=#{var.inspect} used=#{used?}>"
  end

  # A context variable, declared once per (namespace, name) per process.
  # #get(fallback = none), #set(value) -> Token and #reset(token) are C
  # (ext/uvwool/vars.c): the value in the current context; else the
  # fallback when given; else the default; else Uvwool::LookupError.
  class ContextVar
    attr_reader :namespace, :name

    def initialize(namespace, name, default: UNSET)
      __declare(namespace, name, default.equal?(UNSET) ? MISSING : default)
      @namespace = namespace.dup.freeze
      @name = name.dup.freeze
    end

    # Run the block with the variable bound to value, then reset it.
    def with(value)
      token = set(value)
      begin
        yield
      ensure
        reset(token)
      end
    end

    def inspect = "#<Uvwool::ContextVar (#{@namespace}, #{@name})>"
  end

  # Thread.new, Thread.start and Thread.fork run their block in a detached
  # fork of the creating thread's context, taken when the Thread is made
  # (Context#run: entered and left around the block, also when it raises).
  module ThreadFork # :nodoc:
    def self.wrap(block)
      raise ThreadError, "must be called with a block" unless block

      fork = Core.thread_fork
      proc do |*a|
        fork.run do
          block.call(*a)
        ensure
          Core.unwind_fibers # killed inside a fiber: leave its task first
        end
      end.tap(&:ruby2_keywords)
    end

    # Thread.new: initialize runs in the creating thread, before the start.
    ruby2_keywords def initialize(*args, &block)
      super(*args, &ThreadFork.wrap(block))
    end
  end
  Thread.prepend(ThreadFork)

  # Thread.start and Thread.fork skip Thread#initialize.
  module ThreadStartFork # :nodoc:
    ruby2_keywords def start(*args, &block) = super(*args, &ThreadFork.wrap(block))
    ruby2_keywords def fork(*args, &block) = super(*args, &ThreadFork.wrap(block))
  end
  Thread.singleton_class.prepend(ThreadStartFork)

  # The category uvwool's warnings carry to a Warning.warn that takes one.
  WARNING_CATEGORY = :uvwool

  # Called by ext/uvwool/warnings.c for each core warning
  # (SerializationWarning, ...). Ruby 3.1's own Warning.warn accepts only its
  # own categories, so it gets none; a handler defined in Ruby (Warning.warn
  # redefined, or a module extending Warning) gets category: :uvwool.
  def self.__warn(kind, message)
    text = "uvwool: #{kind}: #{message}\n"
    handler = ::Warning.method(:warn)
    return ::Warning.warn(text) if handler.owner == ::Warning && handler.source_location.nil?

    begin
      ::Warning.warn(text, category: WARNING_CATEGORY)
    rescue ArgumentError # a handler without the category keyword
      ::Warning.warn(text)
    end
  end

  # A connection to one uvwool-worker (docs/ruby.md, "Dispatch"):
  # #dispatch(routine, *args) and #stream(routine, *args) are C
  # (ext/uvwool/dispatch.c).
  class Connection
    # Open a connection to address ("pipe:PATH", "tcp:HOST:PORT"); with a
    # block, yield it and close it afterwards. timeout: the handshake bound
    # of its dispatches in milliseconds (default 5000).
    def self.open(address, timeout: nil)
      conn = new(address, timeout: timeout)
      return conn unless block_given?

      begin
        yield conn
      ensure
        conn.close
      end
    end

    def initialize(address, timeout: nil)
      __open(address, timeout)
    end
  end

  # Round-robin over several workers (uvw_pool_*): members found dead are
  # skipped and reconnected in the background.
  class Pool < Connection
    def initialize(addresses, timeout: nil)
      __open(Array(addresses), timeout)
    end
  end

  # Hosts routines written in Ruby on the C worker (uvw_worker_*): the wire,
  # limits and options of uvwool-worker. Worker#run serves in the thread
  # that made the worker (without the GVL while it waits) until #stop, an
  # interrupt or close; each routine's block runs in that thread, in the
  # caller's context.
  class Worker
    # limits: a Hash of uvw_worker_limits_t fields (max_connections:, ...);
    # on_error: called with a Uvwool::WoolError for each peer error;
    # allow_uids/allow_gids: peers besides the worker's own uid.
    def initialize(limits: nil, on_error: nil, socket_mode: nil, socket_group: nil, allow_uids: [],
                   allow_gids: [], allow_remote: false, dispatch_timeout: nil)
      __open
      self.limits = limits if limits
      self.on_error = on_error
      self.socket_mode = socket_mode if socket_mode
      self.socket_group = socket_group if socket_group
      Array(allow_uids).each { |uid| allow_uid(uid) }
      Array(allow_gids).each { |gid| allow_gid(gid) }
      self.allow_remote = allow_remote
      self.dispatch_timeout = dispatch_timeout if dispatch_timeout
    end

    # Register a one-shot routine. answer: :now, the block's value is the
    # Result and its exception the Exception; answer: :later, the block gets
    # a Worker::Call first and answers with call.return(v) / call.raise(e),
    # then or from a later callback on the worker's loop (Call#on_cancel).
    def routine(name, answer: :now, &block)
      raise ArgumentError, "uvwool: answer: must be :now or :later, got #{answer.inspect}" unless %i[now later].include?(answer)

      __routine(name, answer, &block)
    end

    # Register a streaming routine. The block runs in a Fiber of its own,
    # resumed at each step, with a Worker::Yielder first and the dispatch's
    # arguments: y.yield(value) answers the step with a Result and returns
    # what the next step brought (nil for next, the value of a send; a throw,
    # and the caller's close, cancel or disconnection, raise at it); the
    # block's value is the last Result, an exception it raises the Exception.
    # Each step runs in the context the worker mounted for it.
    def stream(name, &block) = __routine(name, :stream, &block)

    def inspect = "#<Uvwool::Worker#{" closed" if closed?}>"
  end

  # The steps of a streaming routine: #next (the next yielded value;
  # StopIteration once the routine returned, its value in #result),
  # #send_value(v), #throw(exception) and #close are C. Each step runs like a
  # one-shot dispatch: the worker's changes apply to the calling fiber.
  class Stream
    include Enumerable

    # Yield every value the routine yields; returns its return value. Runs
    # in the calling fiber (no Enumerator fiber in between): the changes of
    # each step are seen by the block.
    def each
      return enum_for(:each) unless block_given?

      loop { yield self.next } # loop returns StopIteration#result
    end

    def inspect = "#<Uvwool::Stream#{" ended" if ended?}>"
  end

  # A copy of the current context (contextvars.copy_context()).
  def self.copy_context = Core.context_copy_current

  # The current context's chain id (32 hex digits), nil when unarmed.
  def self.chain_id = Core.chain_id
end
