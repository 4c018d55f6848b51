/* uvwool dispatch: run a named routine in a worker process over a libuv
 * stream (pipe or TCP), with the caller's context variables arriving in the
 * routine and the routine's changes flowing back (docs/semantics.md §8, docs/dispatch.md).
 *
 * Worker side: a uvw_worker_t listens on one or more addresses and hosts
 * routines registered by name. Each dispatch is a uvw_call_t. A routine is
 * called once per step, inside the dispatch's context (the caller's values
 * mounted into it), and answers each step exactly once, now or later from
 * a callback on the worker's loop:
 *   - a one-shot routine gets one NEXT step and answers with
 *     uvw_call_return or uvw_call_raise;
 *   - a streaming routine (the C analogue of an async generator) gets NEXT,
 *     SEND and THROW steps and answers each with uvw_call_yield (a Result,
 *     the stream goes on), uvw_call_return (the last Result) or
 *     uvw_call_raise (an Exception, the end).
 * The worker keeps one context per chain id per dispatch, reused by every
 * step, so a token set before a yield can be reset after it.
 *
 * Caller side: a uvw_conn_t is one connection to one worker; uvw_conn_dispatch
 * runs a one-shot routine, uvw_conn_dispatch_stream + uvw_dispatch_next/send/throw
 * drive a streaming one. The reply callback runs in the context captured
 * when the dispatch (or step) was made, after the worker's manifest was
 * merged into it (apply-back): the callback reads the routine's changes.
 * A failed dispatch (refused, cancelled, timed out, connection lost) merges
 * nothing. Many dispatches share a connection, each isolated by its id.
 *
 * Addresses: "pipe:PATH" (a unix socket) or "tcp:HOST:PORT" with a numeric
 * IPv4 address, a bracketed IPv6 one ("tcp:[::1]:7000") or "localhost".
 *
 * Threading: everything here runs on the loop thread of the loop the object
 * was created on (libuv's rule). Functions return 0 or a negative UVW_E*
 * code with details in uvw_last_error(). */
#ifndef UVWOOL_DISPATCH_H
#define UVWOOL_DISPATCH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "uvwool/errors.h"
#include "uvwool/value.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- worker ---------------------------------------------------------------- */

typedef struct uvw_worker_s uvw_worker_t;
typedef struct uvw_call_s uvw_call_t;

typedef enum uvw_step_e {
  UVW_STEP_NEXT = 1, /* advance (the first step of every dispatch) */
  UVW_STEP_SEND,     /* advance with a value: uvw_call_sent() */
  UVW_STEP_THROW     /* raise at the current step: uvw_call_thrown() */
} uvw_step_t;

/* Called once per step on the worker's loop thread, in the dispatch's
 * context. Answer with uvw_call_yield/return/raise, before or after
 * returning. */
typedef void (*uvw_routine_cb)(uvw_call_t *call, void *arg);

/* Routine flags. */
#define UVW_ROUTINE_STREAM 1u /* a streaming routine (yields); default one-shot */

/* A worker on `loop` (borrowed; it must outlive the worker). New worker in
 * *out. 0 or UVW_ENOMEM. */
int uvw_worker_open(uv_loop_t *loop, uvw_worker_t **out);
/* Register `fn` under `name` (copied); `arg` is passed to every call.
 * UVW_EINVAL on an empty name or a name already registered. */
int uvw_worker_register(uvw_worker_t *w, const char *name, uvw_routine_cb fn, void *arg, unsigned flags);
/* Listen on an address (may be called for several). For "tcp:HOST:0" the
 * system picks a port: uvw_worker_address gives it.
 * - "pipe:PATH": the socket file is created with the worker's socket mode
 *   (0600 unless uvw_worker_set_socket_mode) and group, set before the
 *   socket listens, and removed at close. A socket file left at PATH by a
 *   dead process (nothing answers a connect on it) is removed first; one a
 *   live process answers on is left alone and the call fails with
 *   UV_EADDRINUSE. Peers are checked at accept (uvw_worker_allow_uid).
 * - "tcp:HOST:PORT": a non-loopback HOST is refused (UVW_EINVAL) unless
 *   uvw_worker_set_allow_remote was called: a worker authenticates nobody.
 * - "fd:N": adopt file descriptor N, a unix or TCP stream socket already
 *   bound and listening (systemd socket activation passes them from fd 3).
 *   The worker owns the descriptor from then on (closed at close) but never
 *   removes the socket file: the supervisor made it. The TCP rule applies.
 * 0, UVW_EINVAL (bad address, not a listening socket, a remote address
 * not allowed) or libuv's negative error (bind, chmod/chown, listen), with
 * the detail. Loop thread. w NULL: UVW_EINVAL. */
int uvw_worker_listen(uvw_worker_t *w, const char *address);
/* Mode bits (at most 0777) of the unix socket files later listens create.
 * Default 0600: only the worker's user can connect. 0 or UVW_EINVAL (w
 * NULL, bits beyond 0777). Loop thread. */
int uvw_worker_set_socket_mode(uvw_worker_t *w, unsigned mode);
/* Group of the unix socket files later listens create (chown), or -1 (the
 * default) to keep the creating process's. Set a group mode too
 * (uvw_worker_set_socket_mode(w, 0660)). 0 or UVW_EINVAL. Loop thread. */
int uvw_worker_set_socket_group(uvw_worker_t *w, long gid);
/* Peers accepted on unix sockets are checked with SO_PEERCRED: a peer
 * whose uid or gid is listed is served; any other is closed at once and
 * reported to uvw_worker_on_error. The uid list starts with the worker's
 * effective uid; these add to it (32 entries per list; an id listed
 * already is 0). 0 or UVW_EINVAL (w NULL, list full). TCP peers carry no
 * credentials: see uvw_worker_set_allow_remote. Loop thread. */
int uvw_worker_allow_uid(uvw_worker_t *w, uint32_t uid);
int uvw_worker_allow_gid(uvw_worker_t *w, uint32_t gid);
/* Non-zero: later listens may bind TCP beyond loopback. For workers behind
 * a transport that authenticates and encrypts (a TLS terminator,
 * WireGuard, a service mesh; docs/dispatch.md). 0 or UVW_EINVAL (w NULL). */
int uvw_worker_set_allow_remote(uvw_worker_t *w, int allow);
/* Whether the worker's listeners keep its loop alive: yes (1) by default.
 * With 0 (uv_unref's rule, for listeners made before and after) the loop
 * may end while no caller is connected; an accepted connection still holds
 * it. 0 or UVW_EINVAL (w NULL). Loop thread. */
int uvw_worker_set_ref(uvw_worker_t *w, int ref);
/* The i-th listening address as actually bound ("tcp:127.0.0.1:40123"),
 * written NUL-terminated into buf. 0, UVW_EINVAL (no such listener,
 * buffer too small). */
int uvw_worker_address(uvw_worker_t *w, size_t i, char *buf, size_t len);
/* Called with a description when a peer is dropped for bad input
 * (malformed or oversized frame, protocol violation) or an I/O error, and
 * when one request of a peer is refused as a protocol error (a request for
 * an unknown dispatch, ...) while the peer stays connected: such an error
 * carries the field peer=kept. The worker keeps serving everyone else.
 * `error` is borrowed. */
typedef void (*uvw_worker_error_cb)(uvw_worker_t *w, const uvw_error_t *error, void *arg);
void uvw_worker_on_error(uvw_worker_t *w, uvw_worker_error_cb cb, void *arg);
/* Handshake bound applied when a Task carries no dispatch_timeout
 * (exposed to routines by uvw_call_dispatch_timeout). Default 5000 ms. */
void uvw_worker_set_dispatch_timeout(uvw_worker_t *w, uint64_t ms);

/* Per-peer limits of a worker (docs/dispatch.md, "Limits"): what one
 * connection may make the worker hold, and for how long. A plain struct so
 * bindings can fill it field by field; 0 in a field means "the default".
 * docs/dispatch.md gives the worst-case memory as a formula of these. */
typedef struct uvw_worker_limits_s {
  size_t max_connections;     /* accepted connections at once; more are closed at accept (256) */
  size_t max_dispatches;      /* live dispatches per connection; more Tasks get a Nack (1024) */
  size_t max_inflight_bytes;  /* frame bytes of a connection's live dispatches (Task arguments,
                                 a queued step) before Tasks get a Nack (64 MiB) */
  size_t max_stubs;           /* new stubs a connection's live dispatches may create (1024) */
  size_t max_chains;          /* contexts one dispatch keeps, one per chain id: the least recently
                                 used is dropped beyond (8; at most 64) */
  size_t delta_chains;        /* chains whose last manifest a connection keeps, each way, so the next
                                 manifest of the chain can go as a delta (64; at most 1024); each
                                 kept manifest is at most 16 KiB (docs/wire.md, "Delta manifests") */
  size_t write_high_water;    /* bytes queued to a peer before reading from it stops until the
                                 queue drains to half (8 MiB) */
  uint64_t frame_timeout_ms;  /* a partial frame older than this drops the peer (10000) */
  uint64_t idle_timeout_ms;   /* a peer with no dispatch and no frame for this long is closed (300000) */
} uvw_worker_limits_t;

/* Fill *out with the defaults. NULL-safe (no-op). */
void uvw_worker_limits_default(uvw_worker_limits_t *out);
/* Apply limits (copied; 0 fields take the default) to w: they hold for
 * frames read and connections accepted from now on. Loop thread only.
 * Returns 0, or UVW_EINVAL (w or limits NULL, max_chains over 64). */
int uvw_worker_set_limits(uvw_worker_t *w, const uvw_worker_limits_t *limits);
/* Delta manifests (docs/wire.md) on connections accepted from now on: on
 * (1, the default: taken from callers that ask, uvw_conn_set_delta_manifests)
 * or off (0: this worker never takes or sends deltas; its callers then send
 * it full manifests). Returns the previous setting, or UVW_EINVAL (w NULL).
 * Loop thread. */
int uvw_worker_set_delta_manifests(uvw_worker_t *w, int on);
/* The limits in force (defaults filled in) into *out. 0 or UVW_EINVAL. */
int uvw_worker_get_limits(const uvw_worker_t *w, uvw_worker_limits_t *out);

/* Counters of a worker, for monitoring and tests (a snapshot). */
typedef struct uvw_worker_stats_s {
  size_t connections;        /* open connections */
  size_t dispatches;         /* live dispatches over all connections */
  size_t inflight_bytes;     /* frame bytes held by live dispatches */
  size_t read_buffer_bytes;  /* bytes of partial frames buffered */
  size_t write_queue_bytes;  /* bytes queued to peers, not yet written */
  size_t paused_peers;       /* connections not read because their write queue is full */
  size_t refused_connections; /* closed at accept by max_connections, since open */
  size_t timed_out_peers;    /* dropped by frame_timeout_ms or idle_timeout_ms, since open */
  size_t max_call_chains;    /* the most contexts any live dispatch keeps */
} uvw_worker_stats_t;

/* Fill *out. Loop thread only. 0 or UVW_EINVAL (NULL argument). */
int uvw_worker_stats(const uvw_worker_t *w, uvw_worker_stats_t *out);
/* Stop listening, drop every connection (streaming routines waiting for a
 * step get a THROW step with UVW_ECONNRESET so they can end), then call
 * cb once every handle is closed. The worker is freed when the last call
 * has ended; do not use it after this. */
typedef void (*uvw_worker_close_cb)(void *arg);
void uvw_worker_close(uvw_worker_t *w, uvw_worker_close_cb cb, void *arg);

/* Inside a routine (all borrowed, valid until the call ends). */
const char *uvw_call_routine(const uvw_call_t *call);
size_t uvw_call_arg_count(const uvw_call_t *call);
uvw_value_t *uvw_call_arg(const uvw_call_t *call, size_t i);
uvw_step_t uvw_call_step(const uvw_call_t *call);
uvw_value_t *uvw_call_sent(const uvw_call_t *call);         /* SEND step, else NULL */
const uvw_error_t *uvw_call_thrown(const uvw_call_t *call); /* THROW step, else NULL */
/* The handshake bound that travelled with the Task (non-zero, *ms set) or
 * 0 when the caller sent none (*ms = the worker's default). */
int uvw_call_dispatch_timeout(const uvw_call_t *call, uint64_t *ms);
/* Non-zero once the caller cancelled or went away: answers are dropped. */
int uvw_call_cancelled(const uvw_call_t *call);
/* Called (once, on the loop thread) when the caller cancels or goes away
 * while a step runs, so the routine can stop its work and answer, which
 * ends the call. A routine that never answers keeps its call (and the
 * worker's memory) alive until the process exits: long or open-ended work
 * should register this. Streams waiting between steps get a THROW step
 * instead. */
typedef void (*uvw_call_cancel_cb)(uvw_call_t *call, void *arg);
void uvw_call_on_cancel(uvw_call_t *call, uvw_call_cancel_cb fn, void *arg);
uv_loop_t *uvw_call_loop(const uvw_call_t *call);
/* Per-call state for a streaming routine; free_fn(data) runs when the
 * call ends. */
typedef void (*uvw_call_data_free_cb)(void *data);
void uvw_call_set_data(uvw_call_t *call, void *data, uvw_call_data_free_cb free_fn);
void *uvw_call_data(const uvw_call_t *call);

/* Answers (loop thread only). The current context (the routine's view,
 * wherever the answer is made from) is encoded into the Result/Exception
 * and filed as the dispatch's context for the next step. `value` borrowed,
 * NULL means nil. uvw_call_raise's `error` is borrowed; NULL raises
 * uvw_last_error(). After return/raise the call is over: do not touch it.
 * Errors: UVW_EINVAL (no step waiting for an answer, yield from a one-shot
 * routine, wrong thread). When the context cannot be encoded (strict mode:
 * ChainSerializationError; a guard trip) the caller receives that error as
 * an Exception instead, the call ends and its code is returned. */
int uvw_call_yield(uvw_call_t *call, uvw_value_t *value);
int uvw_call_return(uvw_call_t *call, uvw_value_t *value);
int uvw_call_raise(uvw_call_t *call, const uvw_error_t *error);

/* ---- caller ---------------------------------------------------------------- */

typedef struct uvw_conn_s uvw_conn_t;
typedef struct uvw_dispatch_s uvw_dispatch_t;

/* What a dispatch (or one step of a stream) came back with. */
typedef struct uvw_reply_s {
  /* 0: a Result (value). UVW_EREMOTE: the routine raised (error is the
   * routine's, with its kind and fields). UVW_ENACK: the worker refused
   * (error says why). Local failures, after which nothing was merged:
   * UVW_ECANCELED, UVW_ETIMEDOUT, UVW_ECONNRESET, UVW_EPROTO,
   * UVW_EMALFORMED / UVW_ETOOBIG (bad frame), or the error of merging the
   * worker's manifest (e.g. UVW_ECHAINSERIALIZE in strict mode). */
  int status;
  int done;                 /* non-zero: the dispatch is over */
  uvw_value_t *value;       /* status 0: borrowed, valid during the callback */
  const uvw_error_t *error; /* status != 0: borrowed, valid during the callback */
} uvw_reply_t;

typedef void (*uvw_reply_cb)(uvw_dispatch_t *d, const uvw_reply_t *reply, void *arg);

/* Per-dispatch options; NULL for the defaults. */
typedef struct uvw_dispatch_opts_s {
  /* Bound on the handshake (Task -> Ack), not on execution. 0: the
   * connection's default. Travels to the worker in the Task. Counted from
   * the loop time when the dispatch is made (a retry made in a timeout
   * callback gets its full bound); saturates near UINT64_MAX. */
  uint64_t dispatch_timeout_ms;
} uvw_dispatch_opts_t;

/* Open a connection to a worker at `address`. Returns at once: dispatches
 * made before the connection is up are queued and written when it is; if it
 * cannot be made they fail with UVW_ECONNRESET. A unix socket refusing with
 * EAGAIN (its backlog is full) is retried with backoff while the handshake
 * bound allows (docs/dispatch.md). New connection in *out. 0, UVW_EINVAL
 * (loop or out NULL, bad address), UVW_ENOMEM. Loop thread. */
int uvw_conn_open(uv_loop_t *loop, const char *address, uvw_conn_t **out);
/* Default handshake bound for this connection's dispatches (5000 ms; 0
 * restores it). A bound so large that now + bound passes UINT64_MAX
 * saturates: that dispatch never times out, the others keep theirs. */
void uvw_conn_set_dispatch_timeout(uvw_conn_t *conn, uint64_t ms);
/* Most stubs (undeclared variables) the manifests of this connection's
 * live dispatches may create on the caller (1024; 0 restores it): the
 * answer that would exceed it fails with UVW_ESTUBCAP, nothing merged and
 * no stub left behind; its stubs are given back when its dispatch ends.
 * Declared variables never count. */
void uvw_conn_set_max_stubs(uvw_conn_t *conn, size_t stubs);
/* Delta manifests (docs/wire.md) on this connection: on (1: used when
 * the worker takes them too, as workers do by default) or off (0, the
 * default: full manifests both ways). They save most manifest bytes on the
 * wire but today cost some CPU (docs/wire.md, "Cost"). Negotiated when the
 * connection comes up, so set it right after uvw_conn_open: 0, or
 * UVW_EINVAL (conn NULL, or already up). */
int uvw_conn_set_delta_manifests(uvw_conn_t *conn, int on);
/* Whether the connection keeps its loop alive while idle: yes (1) by
 * default, like any libuv handle. With 0 (uv_unref's rule, as Node's
 * socket.unref() and an idle keep-alive socket) the loop may end while
 * nothing is awaited on it; a dispatch or stream step awaiting its reply
 * still holds the loop until it is answered. NULL: a no-op. */
void uvw_conn_set_ref(uvw_conn_t *conn, int ref);
/* Non-zero once the connection is lost (the worker died, the peer sent bad
 * data, the connect failed): every new dispatch fails with UVW_ECONNRESET. */
int uvw_conn_is_dead(const uvw_conn_t *conn);
/* Dispatches waiting for a reply. */
size_t uvw_conn_pending(const uvw_conn_t *conn);
/* Close: every dispatch still waiting gets UVW_ECANCELED (its callback runs
 * from the loop after uvw_conn_close returned, never inside it), open
 * streams are detached once those callbacks ran (close them with
 * uvw_dispatch_close), then cb(arg) once closed. NULL or a second call: a
 * no-op. Loop thread; may be called from a reply callback. */
typedef void (*uvw_conn_close_cb)(void *arg);
void uvw_conn_close(uvw_conn_t *conn, uvw_conn_close_cb cb, void *arg);

/* One-shot: run `routine` with args (borrowed) and call cb once with the
 * reply (done = 1), in the context current now, merged with the worker's
 * manifest. *out (may be NULL) gets the dispatch, valid until cb returns,
 * for uvw_dispatch_cancel. Errors before anything is sent (nothing
 * happens, cb is never called): UVW_EINVAL, UVW_ENOMEM, UVW_ECONNRESET,
 * or the error of encoding the current context (strict mode). */
int uvw_conn_dispatch(uvw_conn_t *conn, const char *routine, uvw_value_t *const *args, size_t nargs,
                 const uvw_dispatch_opts_t *opts, uvw_reply_cb cb, void *arg, uvw_dispatch_t **out);
/* Cancel a dispatch whose reply has not come: the reply is decided now
 * (UVW_ECANCELED, nothing merged; uvw_conn_pending drops at once; a late
 * answer is dropped) and the worker is told, but the callback runs from the
 * loop after uvw_dispatch_cancel returned, never inside it: a callback
 * never runs inside the call that decided it. For a stream it cancels the
 * pending step and ends the stream. 0, or UVW_EINVAL when nothing is
 * pending (already answered, timed out or cancelled, the reply not yet
 * delivered included). d stays valid until its callback returned. */
int uvw_dispatch_cancel(uvw_dispatch_t *d);

/* Streaming: open (sends the Task), then one step at a time, each with its
 * own callback run in the context current at that step, merged. A step
 * while another is pending, or after the end, is UVW_EINVAL. */
int uvw_conn_dispatch_stream(uvw_conn_t *conn, const char *routine, uvw_value_t *const *args, size_t nargs,
                    const uvw_dispatch_opts_t *opts, uvw_dispatch_t **out);
int uvw_dispatch_next(uvw_dispatch_t *d, uvw_reply_cb cb, void *arg);
int uvw_dispatch_send(uvw_dispatch_t *d, uvw_value_t *value, uvw_reply_cb cb, void *arg);
/* Raise `error` (borrowed) inside the routine at its current step. */
int uvw_dispatch_throw(uvw_dispatch_t *d, const uvw_error_t *error, uvw_reply_cb cb, void *arg);
int uvw_dispatch_done(const uvw_dispatch_t *d);
/* End and free the stream: a pending step gets UVW_ECANCELED (its callback
 * runs from the loop afterwards, as uvw_dispatch_cancel's; the stream is
 * freed after it), a routine still running is told (a THROW step of a
 * CancelledError). Do not use d after this call. */
void uvw_dispatch_close(uvw_dispatch_t *d);

/* ---- pool ------------------------------------------------------------------- */

/* Round-robin over connections to several workers, opened at
 * uvw_pool_open. Members whose connection is up are preferred; a member
 * found dead is skipped and reconnected in the background (50 ms, doubling
 * to 2 s while attempts fail; the timer keeps no loop alive). A member
 * still connecting is handed out only when none is up; when all are down,
 * uvw_pool_next tries the one due first at once. A dispatch made on a
 * member whose connect then fails (nothing of it was written) moves to
 * another live member, each tried once (docs/dispatch.md). */
typedef struct uvw_pool_s uvw_pool_t;
int uvw_pool_open(uv_loop_t *loop, const char *const *addresses, size_t count, uvw_pool_t **out);
/* The next connection (borrowed, owned by the pool): one that is up if
 * any, else one still connecting, else a fresh attempt; NULL (with the
 * detail) only when no connection could even be created. */
uvw_conn_t *uvw_pool_next(uvw_pool_t *pool);
size_t uvw_pool_size(const uvw_pool_t *pool);
void uvw_pool_set_dispatch_timeout(uvw_pool_t *pool, uint64_t ms);
/* uvw_conn_set_ref for every connection, those reconnected later too. */
void uvw_pool_set_ref(uvw_pool_t *pool, int ref);
/* Close every connection (as uvw_conn_close), then cb(arg). */
void uvw_pool_close(uvw_pool_t *pool, uvw_conn_close_cb cb, void *arg);

#ifdef __cplusplus
}
#endif

#endif
