/* The worker's side of one dispatch (docs/semantics.md §8, "Worker side").
 *
 * A call keeps one context per chain id, reused by every step, so a token
 * set before a yield can be reset after it. A step runs in the context filed
 * under the id of the request's manifest (a fresh context the first time),
 * with the manifest mounted into it; an unarmed request runs in the call's
 * one unarmed working context. Whatever context the routine answers from
 * (the step's own, or a callback's copy of it) is what the caller gets back
 * and is filed under its chain id for the next step: that is how an unarmed
 * dispatch that the routine arms is found again by the caller's next frame.
 *
 * Steps run on the loop thread with no task current, the same way for every
 * step, so the chain a step mounts is owned by the runner of the next step:
 * steps never trip the guard. Each dispatch mounts into its own contexts,
 * so two dispatches of one chain never share a live chain either. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "wire_frame.h"
#include "worker_int.h"

enum { CALL_ACKED, CALL_IDLE, CALL_RUNNING, CALL_ENDED };

/* At most limits.max_chains of them (<= 64), so the scans below are
 * bounded and a stream that uses a new chain id per step keeps a constant
 * amount of state: the least recently used context is dropped. */
typedef struct ctx_slot_s {
  char id[33];
  uvw_context_t *ctx;
  uint64_t used; /* the call's step counter when last used */
  size_t bytes;  /* the frame whose manifest it holds, charged while kept */
} ctx_slot_t;

struct uvw_call_s {
  uvw__idnode_t node;
  uvw__wconn_t *conn; /* NULL once the caller is gone */
  uvw_worker_t *worker;
  uvw_routine_cb fn;
  void *arg;
  unsigned flags;
  uvw_frame_t *task;      /* routine name, args, runtime settings */
  uvw_frame_t *request;   /* the step being answered (its value / error) */
  uvw_frame_t *queued;    /* one request that arrived while a step ran */
  uvw_error_t *thrown;    /* a THROW step raised here rather than sent */
  uvw_context_t *step_ctx; /* the context of the step in progress / the last one */
  uvw_context_t *unarmed; /* the working context while the dispatch is unarmed */
  ctx_slot_t *slots;
  size_t nslots, slotcap;
  uint64_t clock;        /* ticks on every slot use */
  size_t bytes;          /* frame bytes charged to the connection */
  size_t request_bytes;  /* of those, the current request's (moved to the slot its context is filed in) */
  size_t unarmed_bytes;  /* of those, the unarmed working context's */
  size_t queued_bytes;   /* of those, the queued request's */
  size_t stubs;          /* stubs charged to the connection */
  int state, started, cancelled, kicked;
  uvw_step_t step;
  unsigned depth; /* routine frames on the stack: freeing waits for 0 */
  void *data;
  void (*data_free)(void *);
  uvw_call_cancel_cb on_cancel;
  void *on_cancel_arg;
  uvw_call_t *kick_next;
};

/* ---- sending ------------------------------------------------------------------ */

static uvw_frame_t *frame_for(uvw_call_t *call, uvw_frame_kind_t kind) {
  return uvw_frame_new(kind, call->node.id);
}

static void send_frame(uvw__wconn_t *c, uvw_frame_t *f) {
  if (f && c) uvw__link_send_frame(&c->link, f); /* a failed send shows up as a dropped link */
  uvw_frame_free(f);
}

/* An error that cannot be encoded itself (a strict ChainSerializationError
 * aggregating thousands of warnings, over the size limit) would leave the
 * caller waiting forever: it is replaced by a small one with the same code
 * and kind, and the reason it was replaced. */
static int send_error_once(uvw__wconn_t *c, uint64_t id, uvw_frame_kind_t kind, const uvw_error_t *e) {
  uvw_frame_t *f = uvw_frame_new(kind, id);
  int rc = f == NULL ? UVW_ENOMEM : uvw_frame_set_error(f, e);
  if (rc == 0 && c) rc = uvw__link_send_frame(&c->link, f);
  uvw_frame_free(f);
  return rc;
}

static void send_error(uvw__wconn_t *c, uint64_t id, uvw_frame_kind_t kind, const uvw_error_t *e) {
  int rc = send_error_once(c, id, kind, e);
  if (rc == 0 || rc == UVW_ECONNRESET || c == NULL) return;
  uvw_error_t *small = uvw__error_new(uvw_error_code(e), uvw_error_kind(e),
                                      "the error of this dispatch could not be sent (%s); it was: %.200s",
                                      uvw_err_name(rc), uvw_error_message(e));
  uvw__error_field(small, "replaced_because", "%s", uvw_err_name(rc));
  if (small) send_error_once(c, id, kind, small);
  uvw_error_unref(small);
}

static void protocol_error(uvw__wconn_t *c, uint64_t id, uvw_frame_kind_t kind, const char *fmt, const char *arg) {
  uvw_error_t *e = uvw__error_new(UVW_EPROTO, UVW_KIND_WOOL_ERROR, fmt, arg);
  uvw__error_field(e, "dispatch_id", "%llu", (unsigned long long)id);
  uvw__error_field(e, "peer", "kept"); /* only this request is refused */
  uvw__worker_report(c->worker, e);
  send_error(c, id, kind, e);
  uvw_error_unref(e);
}

/* ---- lifetime ------------------------------------------------------------------ */

static void kick_remove(uvw_call_t *call) {
  for (uvw_call_t **p = &call->worker->kicked; *p; p = &(*p)->kick_next)
    if (*p == call) {
      *p = call->kick_next;
      break;
    }
  call->kicked = 0;
}

static void call_free(uvw_call_t *call) {
  uvw_worker_t *w = call->worker;
  if (call->kicked) kick_remove(call);
  if (call->data_free) call->data_free(call->data);
  for (size_t i = 0; i < call->nslots; i++) uvw_context_unref(call->slots[i].ctx);
  uvw__free(call->slots);
  uvw_context_unref(call->step_ctx);
  uvw_context_unref(call->unarmed);
  uvw_error_unref(call->thrown);
  uvw_frame_free(call->task);
  uvw_frame_free(call->request);
  uvw_frame_free(call->queued);
  uvw__free(call);
  uvw__worker_call_freed(w);
}

/* Give the call's charges back to its connection. */
static void uncharge(uvw_call_t *call) {
  if (call->conn) {
    call->conn->inflight_bytes -= call->bytes;
    call->conn->stubs -= call->stubs;
  }
  call->bytes = call->stubs = call->queued_bytes = call->request_bytes = call->unarmed_bytes = 0;
}

/* Charge (or give back) frame bytes to the call's connection. */
static void charge_bytes(uvw_call_t *call, size_t add, size_t sub) {
  call->bytes = call->bytes + add - sub;
  if (call->conn) call->conn->inflight_bytes = call->conn->inflight_bytes + add - sub;
}

/* Decode a request's manifest now that its dispatch is known, with what
 * is left of the connection's stub budget. */
static void decode_manifest(uvw_call_t *call, uvw_frame_t *f) {
  uvw__wconn_t *c = call->conn;
  size_t max = c->worker->limits.max_stubs;
  size_t created = uvw__link_decode_manifest(&c->link, f, c->stubs < max ? max - c->stubs : 0);
  call->stubs += created;
  c->stubs += created;
}

static void call_end(uvw_call_t *call) {
  call->state = CALL_ENDED;
  uncharge(call);
  if (call->conn) uvw__idmap_del(&call->conn->calls, &call->node);
  call->conn = NULL;
  if (call->depth == 0) call_free(call);
}

static void kick(uvw_call_t *call) {
  uvw_worker_t *w = call->worker;
  if (call->kicked || w->closing) return;
  call->kicked = 1;
  call->kick_next = w->kicked;
  w->kicked = call;
  uv_idle_start(&w->kick, uvw__worker_kick_cb);
}

/* The caller cancelled or went away. A running step is told through its
 * on_cancel callback (once), so it can stop and answer, which ends the call;
 * answers are dropped from now on. */
static void cancel(uvw_call_t *call) {
  if (call->cancelled) return;
  call->cancelled = 1;
  uvw_call_cancel_cb fn = call->on_cancel;
  if (fn == NULL || call->state != CALL_RUNNING) return;
  call->on_cancel = NULL;
  call->depth++;
  fn(call, call->on_cancel_arg);
  call->depth--;
  if (call->state == CALL_ENDED && call->depth == 0) call_free(call);
}

/* ---- contexts ---------------------------------------------------------------------- */

static ctx_slot_t *slot_find(uvw_call_t *call, const char *id) {
  for (size_t i = 0; i < call->nslots; i++)
    if (strcmp(call->slots[i].id, id) == 0) {
      call->slots[i].used = ++call->clock;
      return &call->slots[i];
    }
  return NULL;
}

/* A slot for a new chain id: a new one while under the limit, else the
 * least recently used one, emptied. NULL on allocation failure. */
static ctx_slot_t *slot_take(uvw_call_t *call) {
  size_t max = call->worker->limits.max_chains;
  if (call->nslots < max) {
    if (call->nslots == call->slotcap) {
      ctx_slot_t *grown = uvw__realloc(call->slots, max * sizeof(*grown));
      if (grown == NULL) return NULL;
      call->slots = grown;
      call->slotcap = max;
    }
    return &call->slots[call->nslots++];
  }
  ctx_slot_t *lru = &call->slots[0];
  for (size_t i = 1; i < call->nslots; i++)
    if (call->slots[i].used < lru->used) lru = &call->slots[i];
  uvw_context_unref(lru->ctx);
  lru->ctx = NULL;
  charge_bytes(call, 0, lru->bytes);
  lru->bytes = 0;
  return lru;
}

size_t uvw__call_chains(const uvw_call_t *call) { return call->nslots; }

/* The step's request bytes now stand for what the kept context holds
 * (the values its manifest brought): charged as long as it is kept. */
static void move_charge(uvw_call_t *call, size_t *to) {
  charge_bytes(call, 0, *to);
  *to = call->request_bytes;
  call->request_bytes = 0;
}

/* File ctx under its chain id (or as the unarmed working context). */
static void file_context(uvw_call_t *call, uvw_context_t *ctx) {
  char id[33];
  if (uvw_context_chain_id(ctx, id) != 0) {
    if (call->unarmed != ctx) {
      uvw_context_unref(call->unarmed);
      call->unarmed = uvw_context_ref(ctx);
    }
    move_charge(call, &call->unarmed_bytes);
    return;
  }
  if (call->unarmed == ctx) { /* armed by the routine: no longer the unarmed one */
    uvw_context_unref(call->unarmed);
    call->unarmed = NULL;
    charge_bytes(call, 0, call->unarmed_bytes);
    call->unarmed_bytes = 0;
  }
  ctx_slot_t *s = slot_find(call, id);
  if (s == NULL) {
    if ((s = slot_take(call)) == NULL) return; /* the next step of this chain starts from its manifest */
    memcpy(s->id, id, sizeof(id));
    s->ctx = NULL;
    s->used = ++call->clock;
    s->bytes = 0;
  }
  if (s->ctx != ctx) {
    uvw_context_unref(s->ctx);
    s->ctx = uvw_context_ref(ctx);
  }
  move_charge(call, &s->bytes);
}

/* The context a request's step runs in (a new reference), or NULL. */
static uvw_context_t *context_for(uvw_call_t *call, const uvw_frame_t *f) {
  uvw_frame_manifest_state_t st = f ? uvw_frame_manifest_state(f) : UVW_FRAME_MANIFEST_ERROR;
  if (st == UVW_FRAME_MANIFEST_DECODED) {
    char id[33];
    ctx_slot_t *s = uvw_manifest_id(uvw_frame_manifest(f), id) == 0 ? slot_find(call, id) : NULL;
    return s ? uvw_context_ref(s->ctx) : uvw_context_new();
  }
  if (st == UVW_FRAME_MANIFEST_ERROR && call->step_ctx) return uvw_context_ref(call->step_ctx);
  if (call->unarmed == NULL) call->unarmed = uvw_context_new();
  return call->unarmed ? uvw_context_ref(call->unarmed) : NULL;
}

/* ---- steps ------------------------------------------------------------------------ */

static int is_cancellation(const uvw_error_t *e) {
  const char *t = uvw_error_field(e, "wire_type");
  return t && strcmp(t, UVW__CANCELLED_TYPE) == 0;
}

/* Run one step: the request f (taken), or with f NULL a THROW of `local`
 * (taken) raised here (connection lost). */
static void run_step(uvw_call_t *call, uvw_frame_t *f, size_t bytes, uvw_error_t *local) {
  uvw_frame_free(call->request);
  call->request = f;
  charge_bytes(call, bytes, call->request_bytes);
  call->request_bytes = bytes;
  uvw_error_unref(call->thrown);
  call->thrown = local;
  uvw_frame_kind_t kind = f ? uvw_frame_kind(f) : UVW_FRAME_THROW;
  call->step = kind == UVW_FRAME_NEXT ? UVW_STEP_NEXT : kind == UVW_FRAME_SEND ? UVW_STEP_SEND : UVW_STEP_THROW;
  if (f && kind == UVW_FRAME_THROW && is_cancellation(uvw_frame_error(f))) call->cancelled = 1;

  uvw_context_t *ctx = context_for(call, f);
  uvw__loop_t *L = uvw__loop_get(call->worker->loop);
  if (ctx == NULL || L == NULL) {
    uvw_context_unref(ctx);
    uvw__error_nomem("dispatch context");
    send_error(call->conn, call->node.id, UVW_FRAME_EXCEPTION, uvw_last_error());
    call_end(call);
    return;
  }
  uvw_context_unref(call->step_ctx);
  call->step_ctx = ctx;

  uvw__frame_t fr;
  uvw__frame_begin(&fr, L, ctx, NULL);
  if (f && uvw_frame_mount(f) != 0) {
    /* The request's manifest could not be mounted: nothing changed. */
    uvw_error_t *e = uvw_error_ref(uvw_last_error());
    if (!call->started) {
      uvw__frame_end(&fr);
      send_error(call->conn, call->node.id, UVW_FRAME_EXCEPTION, e);
      uvw_error_unref(e);
      call_end(call);
      return;
    }
    if (call->step == UVW_STEP_THROW) {
      uvw_error_unref(e); /* the thrown payload already carries it at its tail */
    } else {
      call->step = UVW_STEP_THROW; /* the routine sees the failure where it stands */
      call->thrown = e;
    }
  }
  call->started = 1;
  call->state = CALL_RUNNING;
  call->depth++;
  call->fn(call, call->arg);
  call->depth--;
  uvw__frame_end(&fr);
  if (call->state == CALL_ENDED && call->depth == 0) call_free(call);
}

static void run_next_queued(uvw_call_t *call) {
  if (call->queued) {
    uvw_frame_t *f = call->queued;
    size_t bytes = call->queued_bytes;
    call->queued = NULL;
    call->queued_bytes = 0;
    charge_bytes(call, 0, bytes); /* run_step charges it again as the request */
    run_step(call, f, bytes, NULL);
  } else if (call->conn == NULL && (call->flags & UVW_ROUTINE_STREAM)) {
    run_step(call, NULL, 0, uvw__dispatch_error(UVW_ECONNRESET, uvw_frame_routine(call->task),
                                                 "the caller went away"));
  }
}

void uvw__call_run_kicked(uvw_worker_t *w) {
  while (w->kicked) {
    uvw_call_t *call = w->kicked;
    w->kicked = call->kick_next;
    call->kicked = 0;
    if (call->state == CALL_IDLE) run_next_queued(call);
  }
  uv_idle_stop(&w->kick);
}

/* ---- frames from the caller --------------------------------------------------------- */

/* A Task refused: the Nack, and the id remembered for the Next that rode
 * with it (uvw__call_request). */
static void refuse(uvw__wconn_t *c, uint64_t id, const uvw_error_t *e) {
  c->refused_id = id;
  c->has_refused = 1;
  send_error(c, id, UVW_FRAME_NACK, e);
}

void uvw__call_task(uvw__wconn_t *c, uvw_frame_t *task, size_t bytes) {
  uvw_worker_t *w = c->worker;
  uint64_t id = uvw_frame_dispatch_id(task);
  const char *name = uvw_frame_routine(task);
  const uvw__routine_t *r = uvw__worker_find(w, name);
  if (uvw__idmap_get(&c->calls, id)) {
    protocol_error(c, id, UVW_FRAME_NACK, "dispatch id already in use (routine \"%s\")", name);
  } else if (r == NULL) {
    uvw_error_t *e = uvw__error_new(UVW_ENOROUTINE, UVW_KIND_LOOKUP_ERROR, "no routine \"%s\" on this worker", name);
    uvw__error_field(e, "routine", "%s", name);
    refuse(c, id, e);
    uvw_error_unref(e);
  } else if (c->calls.count >= w->limits.max_dispatches || w->closing ||
             c->inflight_bytes + bytes > w->limits.max_inflight_bytes) {
    const char *why = w->closing                                  ? "the worker is closing"
                      : c->calls.count >= w->limits.max_dispatches ? "too many dispatches on this connection"
                                                                   : "too many bytes in flight on this connection";
    uvw_error_t *e = uvw__dispatch_error(UVW_ENACK, name, why);
    uvw__error_field(e, "max_dispatches", "%zu", w->limits.max_dispatches);
    uvw__error_field(e, "max_inflight_bytes", "%zu", w->limits.max_inflight_bytes);
    refuse(c, id, e);
    uvw_error_unref(e);
  } else {
    uvw_call_t *call = uvw__calloc(1, sizeof(*call));
    if (call) call->node.id = id;
    if (call && uvw__idmap_put(&c->calls, &call->node) == 0) {
      call->conn = c;
      call->worker = w;
      call->fn = r->fn;
      call->arg = r->arg;
      call->flags = r->flags;
      call->task = task;
      call->state = CALL_ACKED;
      charge_bytes(call, bytes, 0);
      w->live_calls++;
      send_frame(c, frame_for(call, UVW_FRAME_ACK));
      return;
    }
    uvw__free(call);
    refuse(c, id, uvw_last_error());
  }
  uvw_frame_free(task);
}

void uvw__call_request(uvw__wconn_t *c, uvw_frame_t *f, size_t bytes) {
  uint64_t id = uvw_frame_dispatch_id(f);
  uvw_frame_kind_t kind = uvw_frame_kind(f);
  uvw_call_t *call = (uvw_call_t *)uvw__idmap_get(&c->calls, id);
  if (call == NULL) {
    /* A Throw may race with the end of its dispatch (a late cancellation);
     * a one-shot's Next follows its Task even when the Task was refused. */
    int expected = kind == UVW_FRAME_THROW || (kind == UVW_FRAME_NEXT && c->has_refused && id == c->refused_id);
    if (!expected) protocol_error(c, id, UVW_FRAME_EXCEPTION, "%s for an unknown dispatch", "request");
    uvw_frame_free(f);
    return;
  }
  if (c->inflight_bytes + bytes > c->worker->limits.max_inflight_bytes && kind != UVW_FRAME_THROW) {
    /* Requests are charged like Tasks: over the budget, this dispatch ends
     * (the others on the connection go on). */
    uvw_frame_free(f);
    uvw_error_t *e = uvw__dispatch_error(UVW_ENACK, uvw_frame_routine(call->task),
                                         "too many bytes in flight on this connection");
    uvw__error_field(e, "max_inflight_bytes", "%zu", c->worker->limits.max_inflight_bytes);
    send_error(c, id, UVW_FRAME_EXCEPTION, e);
    uvw_error_unref(e);
    if (call->state == CALL_RUNNING || call->kicked)
      cancel(call); /* its answer is dropped; it ends when it answers */
    else
      call_end(call);
    return;
  }
  if (call->state == CALL_ACKED && kind != UVW_FRAME_NEXT) {
    uvw_frame_free(f);
    if (kind == UVW_FRAME_THROW) { /* cancelled before it started */
      call_end(call);
      return;
    }
    protocol_error(c, id, UVW_FRAME_EXCEPTION, "the first request of a dispatch must be Next (routine \"%s\")",
                   uvw_frame_routine(call->task));
    call_end(call);
    return;
  }
  if (call->state == CALL_RUNNING || call->kicked) {
    int cancelling = kind == UVW_FRAME_THROW && is_cancellation(uvw_frame_error(f));
    if (cancelling || !(call->flags & UVW_ROUTINE_STREAM) || call->queued) {
      /* A one-shot takes no steps; a second queued step breaks "one request,
       * one answer". Either way only a cancellation is legitimate here. */
      uvw_frame_free(f);
      if (!cancelling)
        protocol_error(c, id, UVW_FRAME_EXCEPTION, "a request arrived before the previous step was answered (%s)",
                       uvw_frame_routine(call->task));
      cancel(call);
      return;
    }
    decode_manifest(call, f);
    call->queued = f;
    call->queued_bytes = bytes;
    charge_bytes(call, bytes, 0);
    return;
  }
  if (!(call->flags & UVW_ROUTINE_STREAM) && call->started) {
    uvw_frame_free(f);
    protocol_error(c, id, UVW_FRAME_EXCEPTION, "a one-shot routine takes one step (%s)", uvw_frame_routine(call->task));
    return;
  }
  decode_manifest(call, f);
  run_step(call, f, bytes, NULL);
}

/* The Send's value never reaches the routine; the caller gets the decode
 * error (part, index, reason) as an Exception, which ends the dispatch as
 * every Exception does. The routine is not left waiting: a stream between
 * steps gets that error as a THROW step, a running step is cancelled, and
 * whatever it answers is dropped. */
void uvw__call_undecodable_send(uvw__wconn_t *c, uint64_t id, const uvw_error_t *e) {
  uvw_call_t *call = (uvw_call_t *)uvw__idmap_get(&c->calls, id);
  if (call == NULL) {
    protocol_error(c, id, UVW_FRAME_EXCEPTION, "%s for an unknown dispatch", "request");
    return;
  }
  send_error(c, id, UVW_FRAME_EXCEPTION, e);
  if (call->state == CALL_RUNNING || call->kicked) {
    cancel(call);
  } else if (call->state == CALL_IDLE && (call->flags & UVW_ROUTINE_STREAM)) {
    call->cancelled = 1;
    run_step(call, NULL, 0, uvw_error_ref(e));
  } else {
    call_end(call);
  }
}

void uvw__call_orphan_all(uvw__wconn_t *c) {
  uvw__idnode_t *n;
  while ((n = uvw__idmap_pop(&c->calls)) != NULL) {
    uvw_call_t *call = (uvw_call_t *)n;
    call->conn = NULL;
    if (call->state == CALL_RUNNING) {
      cancel(call);
      continue;
    }
    call->cancelled = 1;
    if (call->state == CALL_ACKED)
      call_end(call);
    else if (call->state == CALL_IDLE) {
      /* A stream waiting for its next step gets a THROW step now so it can
       * end (it would wait forever otherwise). */
      uvw_frame_free(call->queued);
      call->queued = NULL;
      call->queued_bytes = 0;
      if (call->kicked) kick_remove(call);
      run_next_queued(call);
    }
  }
}

/* ---- answers ---------------------------------------------------------------------- */

static int answer_check(uvw_call_t *call, int yield, const char *fn) {
  if (call == NULL) return uvw__error_arg(fn, "call", "is NULL");
  uv_thread_t self = uv_thread_self();
  const char *why = NULL;
  if (!uv_thread_equal(&self, &call->worker->loop_thread))
    why = "answers are made on the worker's loop thread";
  else if (call->state != CALL_RUNNING)
    why = "no step is waiting for an answer";
  else if (yield && !(call->flags & UVW_ROUTINE_STREAM))
    why = "a one-shot routine cannot yield";
  if (why == NULL) return 0;
  uvw_error_t *e = uvw__error_set(UVW_EINVAL, UVW_KIND_RUNTIME_ERROR, "%s: %s", fn, why);
  uvw__error_field(e, "function", "%s", fn);
  uvw__error_field(e, "routine", "%s", uvw_frame_routine(call->task));
  return UVW_EINVAL;
}

/* Encode the answer with the current context's manifest. When that fails
 * (strict serialization, a guard trip, the size limit) the caller gets the
 * failure as an Exception without manifest, and the dispatch ends. */
static int answer(uvw_call_t *call, uvw_frame_kind_t kind, uvw_value_t *value, int done, const uvw_error_t *error) {
  int rc = 0;
  uvw_context_t *now = uvw_context_current();
  if (now) file_context(call, now);
  int end = kind == UVW_FRAME_EXCEPTION || done;
  if (call->conn && !call->cancelled) {
    uvw_frame_t *f = frame_for(call, kind);
    void *buf = NULL;
    uint8_t *mbytes = NULL;
    size_t len = 0, mlen = 0;
    rc = f == NULL ? UVW_ENOMEM
         : kind == UVW_FRAME_RESULT ? uvw_frame_set_value(f, value ? value : uvw_value_nil())
                                    : uvw_frame_set_error(f, error);
    if (rc == 0 && kind == UVW_FRAME_RESULT) rc = uvw_frame_set_done(f, done);
    if (rc == 0) rc = uvw_frame_set_manifest(f, NULL);
    if (rc == 0) rc = uvw__link_encode(&call->conn->link, f, &buf, &len, &mbytes, &mlen);
    uvw_frame_free(f);
    if (rc == 0) {
      uvw__link_send_parts(&call->conn->link, buf, len, mbytes, mlen, 0);
    } else {
      uvw_error_t *e = uvw_error_ref(uvw_last_error());
      send_error(call->conn, call->node.id, UVW_FRAME_EXCEPTION, e);
      uvw__error_publish(e);
      end = 1;
    }
  }
  if (end || call->cancelled) {
    call_end(call);
  } else {
    call->state = CALL_IDLE;
    if (call->queued) kick(call);
  }
  return rc;
}

int uvw_call_yield(uvw_call_t *call, uvw_value_t *value) {
  int rc = answer_check(call, 1, __func__);
  return rc ? rc : answer(call, UVW_FRAME_RESULT, value, 0, NULL);
}

int uvw_call_return(uvw_call_t *call, uvw_value_t *value) {
  int rc = answer_check(call, 0, __func__);
  return rc ? rc : answer(call, UVW_FRAME_RESULT, value, 1, NULL);
}

int uvw_call_raise(uvw_call_t *call, const uvw_error_t *error) {
  int rc = answer_check(call, 0, __func__);
  if (rc) return rc;
  uvw_error_t *e = uvw_error_ref(error ? error : uvw_last_error());
  if (e == NULL) e = uvw__error_new(UVW_EREMOTE, UVW_KIND_WOOL_ERROR, "routine raised without an error");
  rc = answer(call, UVW_FRAME_EXCEPTION, NULL, 1, e);
  uvw_error_unref(e);
  return rc;
}

/* ---- accessors ---------------------------------------------------------------------- */

const char *uvw_call_routine(const uvw_call_t *call) { return uvw_frame_routine(call->task); }
size_t uvw_call_arg_count(const uvw_call_t *call) { return uvw_frame_arg_count(call->task); }
uvw_value_t *uvw_call_arg(const uvw_call_t *call, size_t i) { return uvw_frame_arg(call->task, i); }
uvw_step_t uvw_call_step(const uvw_call_t *call) { return call->step; }
uvw_value_t *uvw_call_sent(const uvw_call_t *call) {
  return call->step == UVW_STEP_SEND && call->request ? uvw_frame_value(call->request) : NULL;
}
const uvw_error_t *uvw_call_thrown(const uvw_call_t *call) {
  if (call->step != UVW_STEP_THROW) return NULL;
  return call->thrown ? call->thrown : call->request ? uvw_frame_error(call->request) : NULL;
}
int uvw_call_dispatch_timeout(const uvw_call_t *call, uint64_t *ms) {
  if (uvw_frame_dispatch_timeout(call->task, ms)) return 1;
  *ms = call->worker->default_timeout_ms;
  return 0;
}
int uvw_call_cancelled(const uvw_call_t *call) { return call->cancelled; }
uv_loop_t *uvw_call_loop(const uvw_call_t *call) { return call->worker->loop; }
void uvw_call_set_data(uvw_call_t *call, void *data, uvw_call_data_free_cb free_fn) {
  call->data = data;
  call->data_free = free_fn;
}
void *uvw_call_data(const uvw_call_t *call) { return call->data; }
void uvw_call_on_cancel(uvw_call_t *call, uvw_call_cancel_cb fn, void *arg) {
  call->on_cancel = fn;
  call->on_cancel_arg = arg;
}
