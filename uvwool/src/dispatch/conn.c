/* The caller's side: a connection to one worker, dispatches multiplexed on
 * it by id, one-shot and streaming (docs/semantics.md §8, "Caller side").
 *
 * Each dispatch (or stream step) captures the current context and task as a
 * libuv registration does; its reply callback runs in that capture after
 * the worker's manifest was merged into it (apply-back). A failure that is
 * not the routine's (refused, cancelled, timed out, connection lost, bad
 * frame) reaches the callback with nothing merged. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "loop_scope.h"
#include "dispatch_int.h"
#include "wire_frame.h"


struct uvw_dispatch_s {
  uvw__idnode_t node;
  uvw_conn_t *conn; /* NULL once the connection closed under an open stream */
  char *routine;
  int stream, acked, ended, closed;
  unsigned in_cb;
  uvw_error_t *end_error; /* why a stream ended early: later steps report it */
  int end_status;
  /* the pending step */
  uvw_reply_cb cb;
  void *arg;
  uvw_context_t *ctx;
  uvw__task_t *task;
  /* handshake: in the conn's awaiting-ack list until Ack/Nack */
  uint64_t deadline, timeout_ms;
  uvw_dispatch_t *ack_prev, *ack_next;
  /* a reply decided inside a user's call (cancel, close): queued on the
   * conn's deferred list and delivered from the loop */
  int deferred;
  int deferred_status;
  uvw_error_t *deferred_error;
  uvw_dispatch_t *deferred_next;
  /* every dispatch of the conn, for teardown */
  uvw_dispatch_t *all_prev, *all_next;
  size_t stubs;     /* stubs its answers' manifests created, charged to the conn */
  size_t route[2];  /* the pool's record of where it was re-routed */
};

struct uvw_conn_s {
  uv_loop_t *loop;
  uvw__link_t link;
  uv_connect_t connect_req;
  uv_timer_t timer; /* the earliest handshake deadline */
  uint64_t timer_due;
  /* Replies decided inside a user's call, delivered from this idle handle
   * (or the next loop callback of this conn), never before that call
   * returns. The conn stays up until the list is drained. */
  uv_idle_t later;
  uvw_dispatch_t *deferred_head, *deferred_tail;
  unsigned draining;
  int handles_closed;
  uvw__idmap_t live; /* dispatches that can still get frames */
  uvw_dispatch_t *awaiting_ack, *all;
  uint64_t own_ids, *next_id; /* own_ids, or the counter a pool's members share */
  uint64_t default_timeout_ms;
  /* Undeclared keys the worker may introduce: stubs created by the
   * manifests of this connection's live dispatches (max_stubs). */
  size_t stubs, max_stubs;
  /* Chains whose manifests this side keeps for the worker's deltas, and
   * advertises (uvw_conn_set_delta_manifests; 0, the default: full
   * manifests only). */
  size_t delta_chains;
  /* A pool member's dispatches whose frames never left go elsewhere when
   * the connect fails (pool.c). */
  uvw__conn_reroute_cb reroute;
  void *reroute_arg;
  size_t pending; /* dispatches with a callback waiting */
  int unref;      /* uvw_conn_set_ref(c, 0): the link holds the loop only while pending */
  char *address;
  int dead, closing, open_handles, up;
  /* Connecting: frames wait here until the connection is up (a refused
   * attempt leaves a handle libuv cannot write to). A unix socket whose
   * backlog is full refuses with EAGAIN: the connect is retried, with
   * backoff, for as long as the handshake bound allows. */
  struct out_s *out_head, *out_tail;
  uv_timer_t retry;
  uint64_t connect_started, connect_backoff_ms;
  int is_pipe;
  uvw_error_t *death;
  uvw_conn_close_cb close_cb;
  void *close_arg;
};

typedef struct out_s {
  struct out_s *next;
  uint64_t id; /* the dispatch it belongs to */
  void *buf; /* the frame without its manifest (uvw__frame_encode_bare) */
  size_t len;
  uint8_t *mbytes; /* its manifest, NULL for none: whole or a delta is decided at write time */
  size_t mlen;
  int handshake; /* a Task: advertises the delta bound */
} out_t;

/* ---- bookkeeping ------------------------------------------------------------- */

/* The link and the timers keep the loop alive while the connection is ref'd
 * or a reply is awaited (uvw_conn_set_ref): the handshake timer stays armed
 * for a deadline already met, and must not hold an idle loop until then.
 * (The idle handle runs only while replies wait to be delivered.) */
static void update_ref(uvw_conn_t *c) {
  uv_handle_t *hs[] = {(uv_handle_t *)&c->link.h, (uv_handle_t *)&c->timer, (uv_handle_t *)&c->retry};
  for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
    if (!c->unref || c->pending > 0) uv_ref(hs[i]);
    else uv_unref(hs[i]);
}

/* Only an unref'd connection's handles change with the count. */
static void pending_add(uvw_conn_t *c) {
  if (c->pending++ == 0 && c->unref) update_ref(c);
}

static void pending_drop(uvw_conn_t *c) {
  if (--c->pending == 0 && c->unref) update_ref(c);
}

static void ack_list_remove(uvw_conn_t *c, uvw_dispatch_t *d) {
  if (d->ack_prev)
    d->ack_prev->ack_next = d->ack_next;
  else
    c->awaiting_ack = d->ack_next;
  if (d->ack_next) d->ack_next->ack_prev = d->ack_prev;
  d->ack_prev = d->ack_next = NULL;
}

static void ack_unlink(uvw_conn_t *c, uvw_dispatch_t *d) {
  if (d->acked) return;
  d->acked = 1;
  ack_list_remove(c, d);
}

static void all_remove(uvw_conn_t *c, uvw_dispatch_t *d) {
  if (d->all_prev)
    d->all_prev->all_next = d->all_next;
  else
    c->all = d->all_next;
  if (d->all_next) d->all_next->all_prev = d->all_prev;
  d->all_prev = d->all_next = NULL;
}

static void all_add(uvw_conn_t *c, uvw_dispatch_t *d) {
  d->all_next = c->all;
  if (c->all) c->all->all_prev = d;
  c->all = d;
}

/* No more frames for d: out of the id table and the handshake list. */
static void retire(uvw_dispatch_t *d) {
  uvw_conn_t *c = d->conn;
  d->ended = 1;
  if (c == NULL) return;
  if (uvw__idmap_get(&c->live, d->node.id) == &d->node) uvw__idmap_del(&c->live, &d->node);
  ack_unlink(c, d);
}

static void dispatch_free(uvw_dispatch_t *d) {
  uvw_conn_t *c = d->conn;
  retire(d);
  if (c) {
    all_remove(c, d);
    c->stubs -= d->stubs;
  }
  uvw__capture_release(d->ctx, d->task);
  uvw_error_unref(d->end_error);
  uvw__free(d->routine);
  uvw__free(d);
}

/* Run the pending callback. f: the Result/Exception whose manifest is
 * merged first (NULL: a local failure, nothing merged). */
static void deliver(uvw_dispatch_t *d, const uvw_frame_t *f, int status, uvw_value_t *value,
                    const uvw_error_t *error, int done) {
  uvw_reply_cb cb = d->cb;
  void *arg = d->arg;
  uvw_context_t *ctx = d->ctx;
  uvw__task_t *task = d->task;
  uv_loop_t *loop = d->conn ? d->conn->loop : NULL;
  d->cb = NULL;
  d->ctx = NULL;
  d->task = NULL;
  if (d->conn && !d->deferred) pending_drop(d->conn); /* a deferred reply was counted out when decided */
  d->deferred = 0;
  if (done) retire(d);

  uvw__frame_t fr;
  uvw__frame_begin(&fr, loop ? uvw__loop_find(loop) : NULL, ctx, task);
  uvw_error_t *held = NULL;
  if (f && uvw_frame_mount(f) != 0) {
    /* Nothing was merged. For an Exception the routine's error stays the
     * answer, the decode error at the tail of its context chain. */
    held = uvw_error_ref(uvw_last_error());
    if (status == 0) status = uvw_error_code(held);
    error = held;
    value = NULL;
  }
  uvw_reply_t reply = {status, done, value, error};
  d->in_cb++;
  cb(d, &reply, arg);
  d->in_cb--;
  uvw__frame_end(&fr);
  uvw__capture_release(ctx, task);
  uvw_error_unref(held);
  /* The callback may have made the next step and closed the stream: that
   * step's reply is deferred, and the drain frees d after delivering it. */
  if (d->in_cb == 0 && !d->deferred && ((!d->stream && done) || d->closed)) dispatch_free(d);
}

static void deliver_error(uvw_dispatch_t *d, int status, const uvw_error_t *e) {
  /* A stream remembers why it ended: later steps report it. */
  if (d->stream && d->end_error == NULL) {
    d->end_error = uvw_error_ref(e);
    d->end_status = status;
  }
  if (d->cb)
    deliver(d, NULL, status, NULL, e, 1);
  else
    retire(d);
}

/* ---- writing: queued until the connection is up ------------------------------- */

static void out_push(uvw_conn_t *c, out_t *o) {
  o->next = NULL;
  if (c->out_tail)
    c->out_tail->next = o;
  else
    c->out_head = o;
  c->out_tail = o;
}

static int out_write(uvw__link_t *link, out_t *o) {
  return uvw__link_send_parts(link, o->buf, o->len, o->mbytes, o->mlen, o->handshake);
}

/* A frame of dispatch `id` (parts as uvw__frame_encode_bare gives them).
 * Takes buf and mbytes whatever the result. */
static int conn_send(uvw_conn_t *c, uint64_t id, out_t parts) {
  parts.id = id;
  if (c->up || c->dead) return out_write(&c->link, &parts);
  out_t *o = uvw__malloc(sizeof(*o));
  if (o == NULL) {
    uvw_free(parts.buf);
    uvw__free(parts.mbytes);
    return uvw__error_nomem("queued frame");
  }
  *o = parts;
  out_push(c, o);
  return 0;
}

/* f encoded for conn_send: in parts when the connection will keep books
 * (the decision is made at write time), else whole. */
static int encode_parts(const uvw_conn_t *c, const uvw_frame_t *f, out_t *parts) {
  *parts = (out_t){0};
  if (c->delta_chains == 0) return uvw_frame_encode(f, &parts->buf, &parts->len);
  parts->handshake = uvw_frame_kind(f) == UVW_FRAME_TASK;
  return uvw__frame_encode_bare(f, &parts->buf, &parts->len, &parts->mbytes, &parts->mlen);
}

static int conn_send_frame(uvw_conn_t *c, const uvw_frame_t *f) {
  out_t parts;
  int rc = encode_parts(c, f, &parts);
  return rc != 0 ? rc : conn_send(c, uvw_frame_dispatch_id(f), parts);
}

/* Write (up) or drop (dead, closed) every queued frame. */
static void out_flush(uvw_conn_t *c, int write) {
  for (out_t *o = c->out_head, *next; o; o = next) {
    next = o->next;
    if (write) {
      out_write(&c->link, o);
    } else {
      uvw_free(o->buf);
      uvw__free(o->mbytes);
    }
    uvw__free(o);
  }
  c->out_head = c->out_tail = NULL;
}

static void tell_worker_cancelled(uvw_dispatch_t *d) {
  uvw_conn_t *c = d->conn;
  if (c == NULL || c->dead || c->closing) return;
  uvw_error_t *e = uvw_error_new(UVW__CANCELLED_TYPE, UVW_ECANCELED, "the caller cancelled the dispatch");
  uvw_frame_t *f = e ? uvw_frame_new(UVW_FRAME_THROW, d->node.id) : NULL;
  if (f && uvw_frame_set_error(f, e) == 0) conn_send_frame(c, f);
  uvw_frame_free(f);
  uvw_error_unref(e);
}

/* ---- the connection dies ------------------------------------------------------ */

static void conn_link_closed(uvw__link_t *link);

/* ---- replies decided inside a user's call ------------------------------------
 *
 * Cancelling, closing and failing a dispatch decide its reply at once but
 * deliver it later, from the loop: a reply callback never runs inside the
 * call (uvw_dispatch_cancel, uvw_dispatch_close, uvw_conn_close) that
 * decided it, and a loop callback that fails many dispatches (a deadline,
 * a dead link) first decides them all, running no user code, then runs
 * their callbacks from the list. The list is popped one entry at a time and
 * a decided dispatch is out of every other list, so a callback may cancel
 * or close any dispatch, or the connection, without invalidating what the
 * loop walks. The connection's handles stay open until the list is empty:
 * the connection outlives every callback it owes. */

static void close_handles(uvw_conn_t *c);
static void later_cb(uv_idle_t *h);

static void defer_reply(uvw_dispatch_t *d, int status, const uvw_error_t *e) {
  uvw_conn_t *c = d->conn;
  if (d->stream && d->end_error == NULL) {
    d->end_error = uvw_error_ref(e);
    d->end_status = status;
  }
  d->deferred = 1;
  d->deferred_status = status;
  d->deferred_error = uvw_error_ref(e);
  d->deferred_next = NULL;
  pending_drop(c);
  retire(d);
  if (c->deferred_tail)
    c->deferred_tail->deferred_next = d;
  else
    c->deferred_head = d;
  c->deferred_tail = d;
  if (!c->draining) uv_idle_start(&c->later, later_cb);
}

/* d gets no more frames: its pending step (if any) is decided with status,
 * a stream between steps remembers why it ended. Runs no user code. */
static void settle(uvw_dispatch_t *d, int status, const uvw_error_t *e) {
  if (d->cb && !d->deferred) {
    defer_reply(d, status, e);
    return;
  }
  if (d->stream && d->end_error == NULL) {
    d->end_error = uvw_error_ref(e);
    d->end_status = status;
  }
  retire(d);
}

static void drain_deferred(uvw_conn_t *c) {
  c->draining++;
  uvw_dispatch_t *d;
  while ((d = c->deferred_head) != NULL) {
    c->deferred_head = d->deferred_next;
    if (c->deferred_head == NULL) c->deferred_tail = NULL;
    uvw_error_t *e = d->deferred_error;
    d->deferred_error = NULL;
    deliver(d, NULL, d->deferred_status, NULL, e, 1);
    uvw_error_unref(e);
  }
  c->draining--;
  if (c->handles_closed || c->draining) return;
  uv_idle_stop(&c->later);
  if (c->closing) close_handles(c);
}

static void later_cb(uv_idle_t *h) { drain_deferred(h->data); }

/* Decide every dispatch still going (no user code runs). */
static void fail_all(uvw_conn_t *c, int code, const uvw_error_t *e) {
  for (uvw_dispatch_t *d = c->all; d; d = d->all_next)
    if (!d->ended) settle(d, code, e);
}

/* ---- a pool member that never came up: its dispatches go elsewhere ------------ */

static void ack_link(uvw_conn_t *c, uvw_dispatch_t *d);

/* Nothing of a connection that never came up was written: each dispatch
 * still going is offered to the pool (oldest first), which moves it to
 * another member with uvw__conn_adopt or leaves it here to fail. */
static void reroute_unsent(uvw_conn_t *c) {
  if (c->up || c->reroute == NULL) return;
  uvw_dispatch_t *d = c->all;
  while (d && d->all_next) d = d->all_next;
  for (uvw_dispatch_t *prev; d; d = prev) {
    prev = d->all_prev;
    if (!d->ended && !d->deferred) c->reroute(c->reroute_arg, c, d);
  }
}

int uvw__conn_adopt(uvw_conn_t *to, uvw_dispatch_t *d) {
  uvw_conn_t *from = d->conn;
  if (to == from || to->dead || to->closing || to->next_id != from->next_id) return UVW_EINVAL;
  /* Ids come from the counter the pool's members share: d keeps its id,
   * and its frames move as they are. */
  uvw__idmap_del(&from->live, &d->node);
  if (uvw__idmap_put(&to->live, &d->node) != 0) {
    uvw__idmap_put(&from->live, &d->node); /* one fewer than before: no growth, cannot fail */
    return UVW_ENOMEM;
  }
  ack_list_remove(from, d);
  all_remove(from, d);
  from->stubs -= d->stubs;
  if (d->cb) pending_drop(from);
  d->conn = to;
  all_add(to, d);
  to->stubs += d->stubs;
  if (d->cb) pending_add(to);
  ack_link(to, d);
  /* Its frames follow it, in order; the others stay (and are dropped). */
  out_t *o = from->out_head;
  from->out_head = from->out_tail = NULL;
  for (out_t *next; o; o = next) {
    next = o->next;
    if (o->id != d->node.id) {
      out_push(from, o);
    } else if (to->up) {
      out_write(&to->link, o);
      uvw__free(o);
    } else {
      out_push(to, o);
    }
  }
  return 0;
}

void uvw__conn_share_ids(uvw_conn_t *c, uint64_t *counter, uvw__conn_reroute_cb fn, void *arg) {
  c->next_id = counter ? counter : &c->own_ids;
  c->reroute = fn;
  c->reroute_arg = arg;
}

size_t *uvw__dispatch_route(uvw_dispatch_t *d) { return d->route; }

/* Fail every dispatch with `code` (detail e), close the link, then run the
 * callbacks (a loop callback: they may run now). */
static void conn_die(uvw_conn_t *c, int code, const uvw_error_t *e) {
  if (c->dead) return;
  c->dead = 1;
  c->death = uvw_error_ref(e);
  uv_timer_stop(&c->timer);
  reroute_unsent(c);
  fail_all(c, code, c->death);
  uvw__link_close(&c->link, conn_link_closed);
  drain_deferred(c);
}

static void conn_fail(uvw__link_t *link, int code) {
  uvw_conn_t *c = link->owner;
  uvw_error_t *e = uvw_error_ref(uvw_last_error());
  uvw__error_field(e, "address", "%s", c->address);
  conn_die(c, code, e);
  uvw_error_unref(e);
}

/* ---- frames from the worker ----------------------------------------------------- */

static void protocol_violation(uvw_dispatch_t *d, const char *what) {
  uvw_error_t *e = uvw__dispatch_error(UVW_EPROTO, d->routine, what);
  tell_worker_cancelled(d);
  deliver_error(d, UVW_EPROTO, e);
  uvw_error_unref(e);
}

/* A well-formed Result or Exception whose value or error cannot be decoded
 * here (an opaque type without a codec on this side) fails its dispatch
 * alone, nothing merged; the worker is told. 1 when handled. */
static int fail_one_dispatch(uvw_conn_t *c, const uint8_t *data, size_t len, const uvw_error_t *e) {
  uint64_t id;
  unsigned kind;
  if (uvw_error_code(e) != UVW_ESERIALIZE || uvw__frame_peek(data, len, &id, &kind) != 0 || kind < 4) return 0;
  uvw_dispatch_t *d = (uvw_dispatch_t *)uvw__idmap_get(&c->live, id);
  if (d == NULL) return 1; /* an answer nobody waits for: dropped as usual */
  if (!d->acked || d->cb == NULL) return 0;
  tell_worker_cancelled(d);
  deliver_error(d, UVW_ESERIALIZE, e);
  return 1;
}

/* An answer's manifest is decoded once its dispatch is known to take it,
 * with what is left of the connection's stub budget: a hostile worker
 * cannot fill the caller with undeclared names. Beyond the budget the
 * decode fails (UVW_ESTUBCAP), nothing is merged and no stub stays. */
static void decode_manifest(uvw_dispatch_t *d, uvw_frame_t *f) {
  uvw_conn_t *c = d->conn;
  size_t created = uvw__link_decode_manifest(&c->link, f, c->stubs < c->max_stubs ? c->max_stubs - c->stubs : 0);
  d->stubs += created;
  c->stubs += created;
}

static void on_frame(uvw__link_t *link, const uint8_t *data, size_t len) {
  uvw_conn_t *c = link->owner;
  uvw_frame_t *f;
  if (uvw__frame_decode_response_deferred(data, len, &f) != 0) {
    uvw_error_t *one = uvw_error_ref(uvw_last_error());
    /* Its manifest still reaches the book, whatever becomes of the frame. */
    uvw__link_delta_receive_raw(link, data, len);
    int handled = fail_one_dispatch(c, data, len, one);
    uvw_error_unref(one);
    if (handled) return;
    uvw_error_t *e = uvw_error_ref(uvw_last_error());
    uvw__error_field(e, "address", "%s", c->address);
    link->failed = 1;
    conn_die(c, uvw_error_code(e), e);
    uvw_error_unref(e);
    return;
  }
  uvw_frame_kind_t kind = uvw_frame_kind(f);
  /* Every frame's manifest reaches the book, its dispatch known or not. */
  if (kind == UVW_FRAME_ACK) uvw__link_delta_peer(&c->link, uvw__frame_delta_chains(f));
  uvw__link_delta_receive(link, f);
  uvw_dispatch_t *d = (uvw_dispatch_t *)uvw__idmap_get(&c->live, uvw_frame_dispatch_id(f));
  if (d == NULL) {
    /* The answer of a dispatch cancelled or timed out here: dropped. */
  } else if (kind == UVW_FRAME_ACK) {
    ack_unlink(c, d);
  } else if (kind == UVW_FRAME_NACK) {
    deliver_error(d, UVW_ENACK, uvw_frame_error(f));
  } else if (!d->acked) {
    protocol_violation(d, "the worker answered before acknowledging");
  } else if (d->cb == NULL) {
    protocol_violation(d, "the worker answered a step nobody made");
  } else if (kind == UVW_FRAME_RESULT) {
    decode_manifest(d, f);
    deliver(d, f, 0, uvw_frame_value(f), NULL, !d->stream || uvw_frame_done(f));
  } else {
    decode_manifest(d, f);
    deliver(d, f, UVW_EREMOTE, NULL, uvw_frame_error(f), 1);
  }
  uvw_frame_free(f);
}

/* ---- handshake deadlines ----------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

/* Point the timer at `due` (an absolute loop time). */
static void timer_at(uvw_conn_t *c, uint64_t due) {
  uint64_t now = uv_now(c->loop);
  c->timer_due = due;
  uv_timer_start(&c->timer, on_timer, due > now ? due - now : 0, 0);
}

/* The earliest deadline of the whole list, read after the callbacks ran:
 * a dispatch a callback made (a retry) counts with its own deadline. */
static void arm_timer(uvw_conn_t *c) {
  uint64_t next = 0;
  for (uvw_dispatch_t *d = c->awaiting_ack; d; d = d->ack_next)
    if (next == 0 || d->deadline < next) next = d->deadline;
  if (next)
    timer_at(c, next);
  else {
    c->timer_due = 0;
    uv_timer_stop(&c->timer);
  }
}

/* Every expired dispatch is decided first (no user code runs, so the walk
 * is safe), then their callbacks run from the deferred list. */
static void on_timer(uv_timer_t *t) {
  uvw_conn_t *c = t->data;
  uint64_t now = uv_now(c->loop);
  c->timer_due = 0;
  for (uvw_dispatch_t *d = c->awaiting_ack, *nx; d; d = nx) {
    nx = d->ack_next;
    if (d->deadline > now) continue;
    uvw_error_t *e = uvw__dispatch_error(UVW_ETIMEDOUT, d->routine, "no answer to the handshake in time");
    uvw__error_field(e, "timeout_ms", "%llu", (unsigned long long)d->timeout_ms);
    tell_worker_cancelled(d);
    settle(d, UVW_ETIMEDOUT, e);
    uvw_error_unref(e);
  }
  drain_deferred(c);
  if (!c->dead && !c->closing) arm_timer(c);
}

static void await_ack(uvw_conn_t *c, uvw_dispatch_t *d, uint64_t timeout_ms) {
  uint64_t now = uv_now(c->loop);
  d->timeout_ms = timeout_ms;
  /* Saturated: a bound near UINT64_MAX means "never", not a wrapped,
   * already-passed deadline that would hide every other one. */
  d->deadline = timeout_ms > UINT64_MAX - now ? UINT64_MAX : now + timeout_ms;
  ack_link(c, d);
}

/* Into c's handshake list with the deadline it already has. */
static void ack_link(uvw_conn_t *c, uvw_dispatch_t *d) {
  d->ack_prev = NULL;
  d->ack_next = c->awaiting_ack;
  if (c->awaiting_ack) c->awaiting_ack->ack_prev = d;
  c->awaiting_ack = d;
  if (c->timer_due == 0 || d->deadline < c->timer_due) timer_at(c, d->deadline);
}

/* ---- open / close ----------------------------------------------------------------- */

static void on_connect(uv_connect_t *req, int status);
static void handle_closed(uvw_conn_t *c);

#define CONNECT_BACKOFF_MIN_MS 2
#define CONNECT_BACKOFF_MAX_MS 128

static void retry_connect(uv_timer_t *t) {
  uvw_conn_t *c = t->data;
  if (c->dead || c->closing) return;
  uv_pipe_connect(&c->connect_req, &c->link.h.pipe, c->address + 5, on_connect);
}

/* The refused handle is closed; a fresh one connects after the backoff,
 * unless the connection was closed or died meanwhile (then this close was
 * the link's last). */
static void retry_link_closed(uvw__link_t *link) {
  uvw_conn_t *c = link->owner;
  int gone = c->dead || c->closing;
  if (!gone && uvw__link_init(&c->link, c->loop, 1, c) == 0) {
    uv_timer_start(&c->retry, retry_connect, c->connect_backoff_ms, 0);
    if ((c->connect_backoff_ms *= 2) > CONNECT_BACKOFF_MAX_MS) c->connect_backoff_ms = CONNECT_BACKOFF_MAX_MS;
    return;
  }
  c->link.closing = 1; /* closed for good: nothing may close it again */
  if (!gone) {
    uvw_error_t *e = uvw_error_ref(uvw_last_error());
    conn_die(c, UVW_ECONNRESET, e);
    uvw_error_unref(e);
  }
  handle_closed(c);
}

/* A full backlog (EAGAIN) is worth another try while the handshake bound
 * of the connection has not passed. */
static int connect_retry(uvw_conn_t *c, int status) {
  if (status != UV_EAGAIN || !c->is_pipe) return 0;
  uint64_t now = uv_now(c->loop);
  if (now + c->connect_backoff_ms >= c->connect_started + c->default_timeout_ms) return 0;
  uvw__link_close(&c->link, retry_link_closed);
  return 1;
}

static void on_connect(uv_connect_t *req, int status) {
  uvw_conn_t *c = req->data;
  if (c->dead || c->closing) return;
  if (status != 0 && connect_retry(c, status)) return;
  /* The books start with the first frame written: a refused attempt's
   * handle (and link) is replaced before that. Out of memory: full
   * manifests only. */
  if (status == 0 && c->delta_chains > 0) uvw__link_delta_init(&c->link, c->delta_chains);
  if (status == 0) status = uvw__link_start(&c->link, on_frame, conn_fail);
  c->up = status == 0;
  if (c->up) out_flush(c, 1);
  if (status != 0) {
    uvw_error_t *e = uvw__error_new(UVW_ECONNRESET, UVW_KIND_WOOL_ERROR, "cannot connect to %s: %s", c->address,
                                    uv_strerror(status));
    uvw__error_field(e, "address", "%s", c->address);
    uvw__error_field(e, "libuv_error", "%s", uv_err_name(status));
    conn_die(c, UVW_ECONNRESET, e);
    uvw_error_unref(e);
  }
}

int uvw_conn_open(uv_loop_t *loop, const char *address, uvw_conn_t **out) {
  uvw__addr_t a;
  if (loop == NULL) return uvw__error_arg(__func__, "loop", "is NULL");
  if (out == NULL) return uvw__error_arg(__func__, "out", "is NULL");
  int rc = uvw__addr_parse(address, &a);
  if (rc != 0) return rc;
  uvw_conn_t *c = uvw__calloc(1, sizeof(*c));
  if (c == NULL || (c->address = uvw__strndup(address, strlen(address))) == NULL) {
    uvw__free(c);
    return uvw__error_nomem("connection");
  }
  c->loop = loop;
  c->default_timeout_ms = UVW__DEFAULT_DISPATCH_TIMEOUT_MS;
  c->own_ids = 1;
  c->next_id = &c->own_ids;
  c->max_stubs = UVW__DEFAULT_CONN_MAX_STUBS;
  uvw__idmap_init(&c->live);
  rc = uvw__link_init(&c->link, loop, a.is_pipe, c);
  if (rc != 0) {
    uvw__free(c->address);
    uvw__free(c);
    return rc;
  }
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  uv_idle_init(loop, &c->later);
  c->later.data = c;
  uv_timer_init(loop, &c->retry);
  c->retry.data = c;
  c->open_handles = 4;
  c->is_pipe = a.is_pipe;
  c->connect_started = uv_now(loop);
  c->connect_backoff_ms = CONNECT_BACKOFF_MIN_MS;
  c->connect_req.data = c;
  if (a.is_pipe)
    uv_pipe_connect(&c->connect_req, &c->link.h.pipe, a.path, on_connect);
  else if ((rc = uv_tcp_connect(&c->connect_req, &c->link.h.tcp, (struct sockaddr *)&a.sa, on_connect)) != 0)
    on_connect(&c->connect_req, rc);
  *out = c;
  return 0;
}

void uvw_conn_set_dispatch_timeout(uvw_conn_t *c, uint64_t ms) {
  if (c == NULL) return;
  c->default_timeout_ms = ms ? ms : UVW__DEFAULT_DISPATCH_TIMEOUT_MS;
}
void uvw_conn_set_max_stubs(uvw_conn_t *c, size_t stubs) {
  if (c == NULL) return;
  c->max_stubs = stubs ? stubs : UVW__DEFAULT_CONN_MAX_STUBS;
}
int uvw_conn_set_delta_manifests(uvw_conn_t *c, int on) {
  if (c == NULL) return uvw__error_arg(__func__, "conn", "is NULL");
  if (c->up || c->dead) {
    uvw_error_t *e = uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR,
                                    "%s: the connection to %s is already up or lost: delta manifests are "
                                    "negotiated when it comes up (set this right after uvw_conn_open)",
                                    __func__, c->address);
    uvw__error_field(e, "address", "%s", c->address);
    return UVW_EINVAL;
  }
  c->delta_chains = on ? UVW__DEFAULT_DELTA_CHAINS : 0;
  return 0;
}

void uvw_conn_set_ref(uvw_conn_t *c, int ref) {
  if (c == NULL) return;
  c->unref = !ref;
  update_ref(c);
}
/* NULL-safe: no connection is a dead one with nothing pending. */
int uvw_conn_is_dead(const uvw_conn_t *c) { return c ? c->dead : 1; }
size_t uvw_conn_pending(const uvw_conn_t *c) { return c ? c->pending : 0; }
uvw__delta_counts_t uvw__conn_delta_counts(const uvw_conn_t *c) {
  return c ? c->link.delta_counts : (uvw__delta_counts_t){0};
}
int uvw__conn_is_up(const uvw_conn_t *c) { return c && c->up && !c->dead && !c->closing; }

static void conn_free(uvw_conn_t *c) {
  uvw_conn_close_cb cb = c->close_cb;
  void *arg = c->close_arg;
  out_flush(c, 0);
  uvw__idmap_free(&c->live);
  uvw_error_unref(c->death);
  uvw__free(c->address);
  uvw__free(c);
  if (cb) cb(arg);
}

static void handle_closed(uvw_conn_t *c) {
  if (--c->open_handles == 0 && c->closing) conn_free(c);
}
static void conn_link_closed(uvw__link_t *link) { handle_closed(link->owner); }
static void timer_closed(uv_handle_t *h) { handle_closed(h->data); }

/* Once every deferred callback ran. */
static void close_handles(uvw_conn_t *c) {
  if (c->handles_closed) return;
  c->handles_closed = 1;
  /* Streams the user still holds outlive the connection, detached. */
  for (uvw_dispatch_t *d = c->all; d; d = d->all_next) d->conn = NULL;
  c->all = NULL;
  uvw__link_close(&c->link, conn_link_closed); /* no-op if dying closed it already */
  uv_close((uv_handle_t *)&c->timer, timer_closed);
  uv_close((uv_handle_t *)&c->later, timer_closed);
  uv_close((uv_handle_t *)&c->retry, timer_closed);
}

void uvw_conn_close(uvw_conn_t *c, uvw_conn_close_cb cb, void *arg) {
  if (c == NULL || c->closing) return;
  c->closing = 1;
  c->close_cb = cb;
  c->close_arg = arg;
  uvw_error_t *e = uvw__error_new(UVW_ECANCELED, UVW_KIND_WOOL_ERROR, "the connection to %s was closed", c->address);
  fail_all(c, UVW_ECANCELED, e);
  uvw_error_unref(e);
  if (c->deferred_head == NULL && !c->draining) close_handles(c);
  /* else the drain closes them, after the last callback */
}

/* ---- dispatching ----------------------------------------------------------------------- */

static int usable(uvw_conn_t *c, const char *fn) {
  if (c == NULL) return uvw__error_arg(fn, "conn", "is NULL");
  if (c->closing) return uvw__error_state(UVW_EINVAL, fn, "the connection is closed");
  if (c->dead) {
    uvw_error_t *e =
        uvw__error_set(UVW_ECONNRESET, UVW_KIND_WOOL_ERROR, "%s: the connection to %s is lost", fn, c->address);
    uvw__error_field(e, "function", "%s", fn);
    uvw__error_set_cause(e, uvw_error_ref(c->death));
    return UVW_ECONNRESET;
  }
  return 0;
}

static int send_built(uvw_conn_t *c, uvw_frame_t *f) {
  int rc = conn_send_frame(c, f);
  uvw_frame_free(f);
  return rc;
}

/* A new dispatch with its Task frame encoded and sent. */
static int start(uvw_conn_t *c, const char *routine, uvw_value_t *const *args, size_t nargs,
                 const uvw_dispatch_opts_t *opts, int stream, uvw_frame_t *first_step, uvw_dispatch_t **out) {
  uint64_t timeout = opts && opts->dispatch_timeout_ms ? opts->dispatch_timeout_ms : c->default_timeout_ms;
  uvw_dispatch_t *d = uvw__calloc(1, sizeof(*d));
  uvw_frame_t *task = uvw_frame_new(UVW_FRAME_TASK, *c->next_id);
  int rc = d && task && (d->routine = uvw__strndup(routine, strlen(routine))) ? 0 : uvw__error_nomem("dispatch");
  if (rc == 0) rc = uvw_frame_set_routine(task, routine);
  for (size_t i = 0; rc == 0 && i < nargs; i++) rc = uvw_frame_add_arg(task, args[i]);
  if (rc == 0) rc = uvw_frame_set_dispatch_timeout(task, timeout);
  out_t tparts = {0}, sparts = {0};
  if (rc == 0) rc = encode_parts(c, task, &tparts);
  if (rc == 0 && first_step) rc = encode_parts(c, first_step, &sparts);
  if (rc == 0) {
    d->node.id = *c->next_id;
    rc = uvw__idmap_put(&c->live, &d->node);
  }
  uvw_frame_free(task);
  if (rc != 0) {
    uvw_free(tparts.buf);
    uvw_free(sparts.buf);
    uvw__free(sparts.mbytes);
    if (d) uvw__free(d->routine);
    uvw__free(d);
    return rc;
  }
  ++*c->next_id;
  d->conn = c;
  d->stream = stream;
  all_add(c, d);
  await_ack(c, d, timeout);
  conn_send(c, d->node.id, tparts);
  if (sparts.buf) conn_send(c, d->node.id, sparts);
  *out = d;
  return 0;
}

/* Capture the current context for d's step and remember its callback. */
static int arm_step(uvw_dispatch_t *d, uvw_reply_cb cb, void *arg) {
  if (uvw__loop_get(d->conn->loop) == NULL) return uvw__error_nomem("loop state");
  int rc = uvw__capture(&d->ctx, &d->task);
  if (rc != 0) return uvw__error_nomem("dispatch capture");
  d->cb = cb;
  d->arg = arg;
  pending_add(d->conn);
  return 0;
}

/* A Next/Send/Throw for dispatch id with the current context's manifest. */
static uvw_frame_t *step_frame(uint64_t id, uvw_frame_kind_t kind, uvw_value_t *value, const uvw_error_t *error,
                               int *rc) {
  uvw_frame_t *f = uvw_frame_new(kind, id);
  *rc = f ? 0 : UVW_ENOMEM;
  if (*rc == 0 && kind == UVW_FRAME_SEND) *rc = uvw_frame_set_value(f, value ? value : uvw_value_nil());
  if (*rc == 0 && kind == UVW_FRAME_THROW) *rc = uvw_frame_set_error(f, error);
  if (*rc == 0) *rc = uvw_frame_set_manifest(f, NULL);
  if (*rc != 0) {
    uvw_frame_free(f);
    return NULL;
  }
  return f;
}

/* The routine name and arguments every dispatch and stream takes. */
static int check_call(const char *fn, const char *routine, uvw_value_t *const *args, size_t nargs) {
  if (routine == NULL) return uvw__error_arg(fn, "routine", "is NULL");
  if (*routine == '\0') return uvw__error_arg(fn, "routine", "is empty");
  if (nargs && args == NULL) return uvw__error_arg(fn, "args", "is NULL with nargs > 0");
  return 0;
}

int uvw_conn_dispatch(uvw_conn_t *c, const char *routine, uvw_value_t *const *args, size_t nargs,
                 const uvw_dispatch_opts_t *opts, uvw_reply_cb cb, void *arg, uvw_dispatch_t **out) {
  int rc = usable(c, __func__);
  if (rc == 0) rc = check_call(__func__, routine, args, nargs);
  if (rc == 0 && cb == NULL) rc = uvw__error_arg(__func__, "cb", "is NULL");
  if (rc != 0) return rc;
  /* The Next rides with the Task: one round trip. */
  uvw_frame_t *next = step_frame(*c->next_id, UVW_FRAME_NEXT, NULL, NULL, &rc);
  if (next == NULL) return rc;
  uvw_dispatch_t *d;
  rc = start(c, routine, args, nargs, opts, 0, next, &d);
  uvw_frame_free(next);
  if (rc == 0 && (rc = arm_step(d, cb, arg)) != 0) {
    /* Both frames are on their way: make the worker drop the dispatch. */
    tell_worker_cancelled(d);
    dispatch_free(d);
  }
  if (rc == 0 && out) *out = d;
  return rc;
}

int uvw_conn_dispatch_stream(uvw_conn_t *c, const char *routine, uvw_value_t *const *args, size_t nargs,
                    const uvw_dispatch_opts_t *opts, uvw_dispatch_t **out) {
  int rc = usable(c, __func__);
  if (rc == 0) rc = check_call(__func__, routine, args, nargs);
  if (rc == 0 && out == NULL) rc = uvw__error_arg(__func__, "out", "is NULL");
  return rc != 0 ? rc : start(c, routine, args, nargs, opts, 1, NULL, out);
}

static int step(uvw_dispatch_t *d, uvw_frame_kind_t kind, uvw_value_t *value, const uvw_error_t *error,
                uvw_reply_cb cb, void *arg, const char *fn) {
  if (d == NULL) return uvw__error_arg(fn, "d", "is NULL");
  if (cb == NULL) return uvw__error_arg(fn, "cb", "is NULL");
  if (!d->stream) return uvw__error_state(UVW_EINVAL, fn, "the dispatch is one-shot, not a stream");
  if (d->closed) return uvw__error_state(UVW_EINVAL, fn, "the stream is closed");
  if (d->end_error) {
    uvw__error_publish(uvw_error_ref(d->end_error));
    return d->end_status;
  }
  if (d->cb || d->ended) {
    return uvw__error_state(UVW_EINVAL, fn,
                            d->cb ? "a step of this stream is already pending" : "the stream has ended");
  }
  int rc = usable(d->conn, fn);
  if (rc != 0) return rc;
  uvw_frame_t *f = step_frame(d->node.id, kind, value, error, &rc);
  if (f == NULL) return rc;
  if ((rc = arm_step(d, cb, arg)) != 0) {
    uvw_frame_free(f);
    return rc;
  }
  return send_built(d->conn, f);
}

int uvw_dispatch_next(uvw_dispatch_t *d, uvw_reply_cb cb, void *arg) {
  return step(d, UVW_FRAME_NEXT, NULL, NULL, cb, arg, __func__);
}
int uvw_dispatch_send(uvw_dispatch_t *d, uvw_value_t *value, uvw_reply_cb cb, void *arg) {
  return step(d, UVW_FRAME_SEND, value, NULL, cb, arg, __func__);
}
int uvw_dispatch_throw(uvw_dispatch_t *d, const uvw_error_t *error, uvw_reply_cb cb, void *arg) {
  if (error == NULL) return uvw__error_arg(__func__, "error", "is NULL");
  return step(d, UVW_FRAME_THROW, NULL, error, cb, arg, __func__);
}
/* A NULL stream has nothing left to step: done. */
int uvw_dispatch_done(const uvw_dispatch_t *d) { return d ? d->ended : 1; }

int uvw_dispatch_cancel(uvw_dispatch_t *d) {
  if (d == NULL) return uvw__error_arg(__func__, "d", "is NULL");
  if (d->cb == NULL || d->deferred || d->conn == NULL)
    return uvw__error_state(UVW_EINVAL, __func__, "no reply is pending");
  uvw_error_t *e = uvw__dispatch_error(UVW_ECANCELED, d->routine, "cancelled by the caller");
  tell_worker_cancelled(d);
  defer_reply(d, UVW_ECANCELED, e);
  uvw_error_unref(e);
  return 0;
}

void uvw_dispatch_close(uvw_dispatch_t *d) {
  if (d == NULL || d->closed) return;
  if (d->cb && !d->deferred)
    uvw_dispatch_cancel(d);
  else if (!d->ended)
    tell_worker_cancelled(d);
  d->closed = 1;
  /* A deferred reply still owes its callback: the drain frees d after it. */
  if (d->in_cb == 0 && !d->deferred) dispatch_free(d);
}
