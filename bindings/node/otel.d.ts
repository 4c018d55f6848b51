// require('uvwool/otel'): an OpenTelemetry ContextManager backed by a uvwool
// variable. Structural types, so the package needs no @opentelemetry/api.
export interface OtelContext {
  getValue(key: symbol): unknown;
  setValue(key: symbol, value: unknown): OtelContext;
  deleteValue(key: symbol): OtelContext;
}
export interface UvwoolContextManagerOptions {
  /** The root context; default: require('@opentelemetry/api').ROOT_CONTEXT. */
  root?: OtelContext;
}
export declare class UvwoolContextManager {
  constructor(options?: UvwoolContextManagerOptions);
  active(): OtelContext;
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    context: OtelContext, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F>;
  bind<T>(context: OtelContext, target: T): T;
  enable(): this;
  disable(): this;
}
