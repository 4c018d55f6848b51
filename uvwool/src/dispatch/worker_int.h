/* Worker internals: the server (worker.c) and the per-dispatch session
 * (call.c). */
#ifndef UVW_WORKER_INT_H
#define UVW_WORKER_INT_H

#include "dispatch_int.h"
#include "loop_scope.h"

typedef struct routine_s {
  char *name;
  uvw_routine_cb fn;
  void *arg;
  unsigned flags;
} uvw__routine_t;

/* Entries of each peer allow-list (uids, gids). */
#define UVW__MAX_PEER_IDS 32

typedef struct uvw__wconn_s uvw__wconn_t;
typedef struct uvw__listener_s uvw__listener_t;

struct uvw_worker_s {
  uv_loop_t *loop;
  uv_thread_t loop_thread;
  uvw__routine_t *routines;
  size_t nroutines;
  uvw__listener_t *listeners;
  int listeners_unref; /* uvw_worker_set_ref(w, 0) */
  uvw__wconn_t *conns;
  uvw_worker_error_cb on_error;
  void *on_error_arg;
  uint64_t default_timeout_ms;
  /* Calls with a request queued while a step was running, drained from an
   * idle handle so a routine is never re-entered from inside its answer. */
  uv_idle_t kick;
  uvw_call_t *kicked;
  size_t live_calls;    /* calls not yet freed: the worker outlives them */
  uvw_worker_limits_t limits; /* every field filled in (no zeros) */
  size_t nconns, refused, timed_out;
  /* One timer for every connection's frame and idle deadlines. */
  uv_timer_t sweep;
  size_t open_handles;  /* listeners, connections and the kick handle */
  int closing;
  uvw_worker_close_cb close_cb;
  void *close_arg;
  /* Who may connect (worker.c, "listening"): the mode and group of the
   * unix sockets it creates, the peer uids/gids it accepts on them
   * (SO_PEERCRED; the worker's own uid from the start), and whether TCP
   * may listen beyond loopback. */
  unsigned socket_mode;
  long socket_gid; /* -1: leave the group alone */
  uint32_t allow_uids[UVW__MAX_PEER_IDS], allow_gids[UVW__MAX_PEER_IDS];
  size_t nallow_uids, nallow_gids;
  int allow_remote;
  int delta_off; /* uvw_worker_set_delta_manifests(w, 0): new connections take full manifests only */
};

/* One accepted connection: its dispatches by id. */
struct uvw__wconn_s {
  uvw__link_t link;
  uvw_worker_t *worker;
  uvw__idmap_t calls;
  size_t inflight_bytes; /* frame bytes its live calls hold (limits.max_inflight_bytes) */
  size_t stubs;          /* stubs its live calls' decodes created (limits.max_stubs) */
  /* The last Task refused with a Nack: the Next a one-shot dispatch sends
   * with its Task then finds no call, and is dropped quietly instead of
   * answered as a protocol error. */
  uint64_t refused_id;
  int has_refused;
  uvw__wconn_t *next;
};

/* The most contexts (chain slots) one call may be given. */
#define UVW__MAX_CHAINS_CAP 64

/* call.c: the session of one dispatch. */
/* `bytes`: the frame's size on the wire, charged to the call while it
 * holds the frame. */
void uvw__call_task(uvw__wconn_t *c, uvw_frame_t *task, size_t bytes);       /* takes the frame */
void uvw__call_request(uvw__wconn_t *c, uvw_frame_t *request, size_t bytes); /* Next/Send/Throw; takes it */
/* A Send for dispatch `id` whose value this worker cannot decode (e: the
 * decode error): that dispatch alone gets e as an Exception and ends. */
void uvw__call_undecodable_send(uvw__wconn_t *c, uint64_t id, const uvw_error_t *e);
/* The number of contexts the call keeps (stats). */
size_t uvw__call_chains(const uvw_call_t *call);
/* The connection is going away: detach every call (waiting streams get a
 * THROW step of UVW_ECONNRESET; running ones have their answers dropped). */
void uvw__call_orphan_all(uvw__wconn_t *c);
/* Run queued requests: the kick handle's callback. */
void uvw__call_run_kicked(uvw_worker_t *w);
void uvw__worker_kick_cb(uv_idle_t *idle);
/* The worker's bookkeeping when a call is freed. */
void uvw__worker_call_freed(uvw_worker_t *w);
void uvw__worker_report(uvw_worker_t *w, const uvw_error_t *e);
const uvw__routine_t *uvw__worker_find(const uvw_worker_t *w, const char *name);

/* worker.c, listening. Each returns 0 or a negative code (detail published). */
int uvw__worker_bind_pipe(uvw_worker_t *w, uv_pipe_t *pipe, const char *path);
int uvw__worker_check_remote(uvw_worker_t *w, const char *address, const struct sockaddr_storage *ss);
int uvw__worker_check_peer(uvw_worker_t *w, uv_pipe_t *pipe); /* reports a refused peer */
int uvw__worker_listen_fd(uvw_worker_t *w, const char *address);

#endif
