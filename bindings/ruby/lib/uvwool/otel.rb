# frozen_string_literal: true

# OpenTelemetry with uvwool (docs/ruby.md, "OpenTelemetry"):
#   - Uvwool::OTel::BaggagePropagator, a text-map propagator of the W3C
#     `baggage` header for uvwool's variables (the core's baggage codec);
#   - Uvwool::OTel::ContextStorage, the storage of OpenTelemetry::Context's
#     attach/detach kept in a uvwool variable, so the current OTel context
#     follows every new Fiber and Thread as uvwool's variables do;
#     Uvwool::OTel.install(OpenTelemetry::Context) puts it under the real
#     class, Uvwool::OTel::Context is a self-contained class with the same
#     interface.
require "uvwool"

module Uvwool
  module OTel
    # Reads and writes carrier[key] for a Hash-like carrier (OpenTelemetry's
    # default text-map getter and setter).
    module HashCarrier
      def self.get(carrier, key) = carrier[key]
      def self.set(carrier, key, value) = carrier[key] = value
    end

    # The `baggage` header: uvwool's string variables with
    # PROPAGATE_BAGGAGE as members "namespace.name=value", and the members of
    # other systems received earlier, as received.
    class BaggagePropagator
      FIELD = "baggage"

      def fields = [FIELD]

      # Write the header of the current uvwool context (or of context:, a
      # Uvwool::Context) into carrier; nothing when there is no member.
      def inject(carrier, context: nil, setter: HashCarrier)
        header = context ? context.run { Core.baggage_encode } : Core.baggage_encode
        setter.set(carrier, FIELD, header) unless header.empty?
        carrier
      end

      # A copy of the current context (or of context:) with the carrier's
      # header mounted: run code in it with #run. A carrier without the
      # header gives the plain copy; a malformed one raises and changes
      # nothing.
      def extract(carrier, context: nil, getter: HashCarrier)
        copy = context ? context.run { Uvwool.copy_context } : Uvwool.copy_context
        header = getter.get(carrier, FIELD)
        copy.run { Core.baggage_mount(header) } if header
        copy
      end
    end

    # The variable holding the current OTel context object. Opaque Ruby
    # objects never cross the wire: forks and threads only.
    CONTEXT = ContextVar.new("opentelemetry", "context", default: nil)
    CONTEXT.policy = PROPAGATE_FORK | PROPAGATE_THREAD

    # current / attach / detach / clear, as OpenTelemetry::Context's class
    # methods, stored in CONTEXT instead of a fiber-local stack. The
    # extending class provides empty (and may define ROOT, the context of
    # nothing attached).
    module ContextStorage
      # The context attached last in this fiber (or inherited from its
      # creator), else the root context.
      def current = CONTEXT.get || (const_defined?(:ROOT) ? self::ROOT : empty)

      # Make context current; the token restores the previous one.
      def attach(context) = CONTEXT.set(context)

      # Restore the context current before the attach that returned token.
      # true when it did; false for a token that is not this variable's,
      # was used already, or belongs to another fiber's context: the context
      # is left as it is and a warning says why (OpenTelemetry reports a
      # mismatched detach the same way instead of raising).
      def detach(token)
        raise TypeError, "uvwool: detach expects the token attach returned, got #{token.class}" unless token.is_a?(Token)

        CONTEXT.reset(token)
        true
      rescue WoolError => e
        Uvwool.__warn("WoolWarning", "calls to detach should match corresponding calls to attach: #{e.message}")
        false
      end

      # Forget every attach of this fiber's context (tests use it).
      def clear
        CONTEXT.set(nil)
        nil
      end
    end

    # Put ContextStorage under a class with OpenTelemetry::Context's
    # interface (OpenTelemetry::Context itself): its with_current,
    # with_value, ... use current/attach/detach and so the uvwool variable.
    def self.install(context_class)
      context_class.singleton_class.prepend(ContextStorage)
      context_class
    end

    # A context class with OpenTelemetry::Context's interface, for code that
    # has no opentelemetry gem: immutable contexts of key => value entries.
    class Context
      # A key of context entries (Context.create_key).
      class Key
        attr_reader :name

        def initialize(name)
          @name = name
        end

        def get(context = Context.current) = context.value(self)
      end

      class << self
        def create_key(name) = Key.new(name)

        def empty = EMPTY

        def value(key) = current.value(key)

        # Run the block with context current; restored afterwards.
        def with_current(context)
          token = attach(context)
          yield context
        ensure
          detach(token) if token
        end

        def with_value(key, value, &blk)
          with_current(current.set_value(key, value)) { |ctx| blk.call(ctx, value) }
        end

        def with_values(values, &blk)
          with_current(current.set_values(values)) { |ctx| blk.call(ctx, values) }
        end
      end

      def initialize(entries = {})
        @entries = entries.freeze
      end

      def value(key) = @entries[key]
      alias [] value

      def set_value(key, value) = Context.new(@entries.merge(key => value))
      def set_values(values) = Context.new(@entries.merge(values))

      EMPTY = new
      ROOT = EMPTY
      extend ContextStorage
    end
  end
end
