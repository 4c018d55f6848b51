// Type declarations of the uvwool npm package (hand-written; docs/node.md).

/** Values that cross to C and the wire as themselves; any other value is
 *  stored as an opaque value that never crosses the wire. */
export type WireValue = null | boolean | number | bigint | string | Uint8Array;

/** "No binding": a token's old value when the variable was unbound. */
export declare const MISSING: { readonly [Symbol.toStringTag]: 'uvwool.MISSING' };

export interface ContextVarOptions<T> {
  /** Returned by get() when nothing is bound. Must not be undefined. */
  default?: T;
}

export declare class Token<T = unknown> {
  private constructor();
  static readonly MISSING: typeof MISSING;
  /** The variable that minted this token. */
  readonly var: ContextVar<T>;
  /** The value before the set, or MISSING. */
  readonly oldValue: T | typeof MISSING;
  /** True once reset() consumed it (tokens are single-use). */
  readonly used: boolean;
}

export declare class ContextVar<T = unknown> {
  /** Declares (namespace, name) in the process-wide registry; throws
   *  ContextVarCollision when it is taken (also by a native addon). */
  constructor(namespace: string, name: string, options?: ContextVarOptions<T>);
  static readonly MISSING: typeof MISSING;
  readonly namespace: string;
  readonly name: string;
  /** The bound value, else `fallback` when passed, else the default, else
   *  throws LookupError. Never calls into C. */
  get(): T;
  get<F>(fallback: F): T | F;
  /** Binds `value` for the rest of the current callback and everything it
   *  registers afterwards; returns a single-use Token. */
  set(value: T): Token<T>;
  /** Restores the value before the token's set. Throws RuntimeError
   *  (UVW_ETOKEN_USED) or ValueError (UVW_ETOKEN_VAR, UVW_ETOKEN_CONTEXT). */
  reset(token: Token<T>): void;
  /** Scoped set: fn(...args) runs with `value` bound; returns fn's result. */
  run<R, A extends unknown[]>(value: T, fn: (...args: A) => R, ...args: A): R;
}

export declare class Context {
  constructor();
  /** Enters this context for fn's synchronous extent and keeps what fn
   *  wrote; throws RuntimeError (UVW_EENTERED) when already entered. */
  run<R, A extends unknown[]>(fn: (...args: A) => R, ...args: A): R;
  get<T, F = undefined>(v: ContextVar<T>, fallback?: F): T | F;
  has(v: ContextVar<unknown>): boolean;
  readonly size: number;
  entries(): Array<[ContextVar<unknown>, unknown]>;
  copy(): Context;
  /** 32 lowercase hex digits, or null when unarmed. */
  chainId(): string | null;
}

/** O(1) copy of the current context (same chain). */
export declare function copyContext(): Context;
/** Captures the current context; the function runs fn in it later. */
export declare function snapshot(): <R, A extends unknown[]>(fn: (...args: A) => R, ...args: A) => R;
/** fn bound to the context current now. */
export declare function wrap<F extends (...args: any[]) => any>(fn: F): F;
/** Runs fn as a task in a fork of the current context (a new chain id when
 *  armed); its writes never reach the caller. */
export declare function spawn<R, A extends unknown[]>(fn: (...args: A) => R | PromiseLike<R>, ...args: A): Promise<R>;
/** The current chain id, or null when the current context is unarmed. */
export declare function chainId(): string | null;

/** A detached fork of the current context as data, for a worker_threads
 *  Worker (postMessage, workerData): the wire values, keyed by identity. */
export interface ThreadSnapshot {
  chainId: string | null;
  bindings: [namespace: string, name: string, value: WireValue][];
  /** '(ns, name)' of the opaque values left behind. */
  left: string[];
}
export declare function threadSnapshot(): ThreadSnapshot;
/** Runs fn in a new Context made from the snapshot (a new chain id, the
 *  variables this env declared); returns fn's result. */
export declare function runInThreadSnapshot<R, A extends unknown[]>(snapshot: ThreadSnapshot, fn: (...args: A) => R, ...args: A): R;

export interface ConnectOptions {
  /** Bound on each dispatch's handshake (Task to Ack), not on execution; 0: 5000 ms. */
  timeoutMs?: number;
}
export interface DispatchOptions extends ConnectOptions {
  signal?: AbortSignal;
}
/** A connection (or a pool) to uvwool-worker processes. Each dispatch and
 *  stream step sends the context current at the call; the worker's changes
 *  come back into the context that awaits it. */
declare class Peer {
  /** The routine's return value. Rejects with a WoolError whose `status` is
   *  'UVW_EREMOTE' (the routine raised), 'UVW_ENACK', 'UVW_ECONNRESET',
   *  'UVW_ECANCELED', 'UVW_ETIMEDOUT', ... and `routine` its name. */
  dispatch(routine: string, ...args: WireValue[]): Promise<WireValue>;
  /** dispatch() with this dispatch's handshake bound and an AbortSignal
   *  (aborting rejects with 'UVW_ECANCELED' and tells the worker). */
  dispatchWith(options: DispatchOptions, routine: string, ...args: WireValue[]): Promise<WireValue>;
  /** A streaming routine; steps run when iterated. */
  stream(routine: string, ...args: WireValue[]): Stream;
  /** stream() with its Task's handshake bound and an AbortSignal (aborting
   *  ends the stream as return() does: a pending step rejects with
   *  'UVW_ECANCELED' and the worker is told). */
  streamWith(options: DispatchOptions, routine: string, ...args: WireValue[]): Stream;
  /** Rejects what still waits ('UVW_ECANCELED'), then closes. Idempotent. */
  close(): Promise<void>;
  readonly closed: boolean;
  /** As socket.unref(): an idle peer no longer keeps the process alive; a reply awaited still does. */
  unref(): this;
  /** Undoes unref() (the default). */
  ref(): this;
}
export declare class Connection extends Peer {
  /** Lost (worker gone, bad frame, connect failed) or closed. */
  readonly dead: boolean;
}
export declare class Pool extends Peer {}
export declare class Stream implements AsyncIterableIterator<WireValue> {
  /** next(v) with a value is send(v). */
  next(value?: WireValue): Promise<IteratorResult<WireValue, WireValue>>;
  send(value: WireValue): Promise<IteratorResult<WireValue, WireValue>>;
  /** Raises err (its name and message) in the routine at its current step. */
  throw(err: Error): Promise<IteratorResult<WireValue, WireValue>>;
  /** Ends the stream; the routine is told. */
  return(): Promise<IteratorResult<WireValue, undefined>>;
  close(): void;
  [Symbol.asyncIterator](): Stream;
}
/** A connection to a worker at 'pipe:PATH' or 'tcp:HOST:PORT', usable at once. */
export declare function connect(address: string, options?: ConnectOptions): Connection;
/** Round-robin over several workers; dead members are skipped and reconnected. */
export declare function pool(addresses: string[], options?: ConnectOptions): Pool;

/** Per-peer limits of a worker (uvw_worker_limits_t; docs/dispatch.md,
 *  "Limits"). 0 or left out: the C default. */
export interface WorkerLimits {
  maxConnections?: number;
  maxDispatches?: number;
  maxInflightBytes?: number;
  maxStubs?: number;
  /** At most 64. */
  maxChains?: number;
  writeHighWater?: number;
  frameTimeoutMs?: number;
  idleTimeoutMs?: number;
}
export interface WorkerOptions {
  limits?: WorkerLimits;
  /** A peer dropped for bad input or an I/O error, a request refused, or
   *  an answer the core could not encode. */
  onError?: (error: WoolError) => void;
  /** Mode bits of the unix socket files listen() creates (default 0o600). */
  socketMode?: number;
  /** Group of those socket files, or -1 (the default: the process's). */
  socketGroup?: number;
  /** Unix peers served besides the worker's own uid (SO_PEERCRED). */
  allowUids?: number[];
  allowGids?: number[];
  /** TCP beyond loopback (behind a transport that authenticates). */
  allowRemote?: boolean;
  /** Handshake bound when a Task carries none (default 5000). */
  dispatchTimeoutMs?: number;
}
/** What a hosted routine sees of its dispatch: `this`, and currentCall(). */
export interface Call {
  readonly routine: string;
  /** Aborted when the caller cancels, closes or goes away, or the worker
   *  closes; the routine's answer is dropped after that. */
  readonly signal: AbortSignal;
  readonly cancelled: boolean;
  /** The handshake bound of the Task, else the worker's. */
  readonly dispatchTimeoutMs: number;
  /** Whether the caller sent dispatchTimeoutMs. */
  readonly dispatchTimeoutSent: boolean;
}
export type Routine = (this: Call, ...args: any[]) => WireValue | void | Promise<WireValue | void>;
export type StreamRoutine = (this: Call, ...args: any[]) => AsyncGenerator<WireValue, WireValue | void, any> | Generator<WireValue, WireValue | void, any>;
/** Hosts routines on Node's loop: the C worker's wire, limits and options. */
export declare class Worker {
  constructor(options?: WorkerOptions);
  /** A one-shot routine: its (awaited) value is the Result, a throw the Exception. */
  routine(name: string, fn: Routine): this;
  /** A streaming routine: each yield a Result, its return the last;
   *  SEND is gen.next(value), THROW gen.throw(error). */
  stream(name: string, genFn: StreamRoutine): this;
  /** 'pipe:PATH', 'tcp:HOST:PORT' or 'fd:N'; resolves with the address as bound. */
  listen(address: string): Promise<string>;
  address(i?: number): string;
  limits(): Required<WorkerLimits>;
  stats(): {
    connections: number;
    dispatches: number;
    inflightBytes: number;
    readBufferBytes: number;
    writeQueueBytes: number;
    pausedPeers: number;
    refusedConnections: number;
    timedOutPeers: number;
    maxCallChains: number;
  };
  /** Whether the listening sockets keep the process alive (they do by default). */
  ref(): this;
  unref(): this;
  /** Stops listening and drops every connection; resolves once closed. */
  close(): Promise<void>;
  readonly closed: boolean;
}
/** The call of the hosted routine whose context is current, or null. */
export declare function currentCall(): Call | null;

/** What native code sees: reads through the C core in a mirror of the
 *  current context. For diagnostics and tests; costs a native call. */
export declare const native: {
  get<T>(v: ContextVar<T>): T;
  size(): number;
  /** [the uv.h version the addon was compiled against, the running libuv's] */
  uvVersions(): [string, string];
};

export declare class WoolError extends Error {
  /** A routine raises one to send its class, code and fields to its caller. */
  constructor(message: string, code?: string, fields?: Record<string, string>);
  /** 'UVW_E...' */
  code: string;
  /** The detail record's fields as C wrote them (snake_case keys). */
  readonly fields: Readonly<Record<string, string>>;
  [field: string]: unknown;
}
export declare class ChainContention extends WoolError {
  chainId: string;
  kind: 'thread' | 'task' | 'create_task';
  operation: string;
  variable: string;
  ownerTask: string;
  offendingTask: string;
}
export declare class ContextVarCollision extends WoolError {
  namespace: string;
  varName: string;
}
export declare class TaskFactoryDisplaced extends WoolError {}
export declare class SerializationError extends WoolError {}
export declare class ChainSerializationError extends SerializationError {}
export declare class LookupError extends WoolError {
  namespace: string;
  varName: string;
}
export declare class ValueError extends WoolError {}
export declare class RuntimeError extends WoolError {}
export declare class MemoryError extends WoolError {}
