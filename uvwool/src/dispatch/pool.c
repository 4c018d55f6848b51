/* A small pool: round-robin over connections to several workers. Finding
 * and supervising workers is not ours (docs/dispatch.md shows how to run
 * them under systemd); the pool spreads dispatches over the members that
 * are up, skips members known dead and reconnects them in the background
 * with exponential backoff (docs/dispatch.md, "The pool").
 *
 * A member is up (its connection established), connecting, or down
 * (waiting for its next attempt). uvw_pool_next prefers members that are
 * up, so a dispatch is only handed to a connection still connecting when
 * no member is up: a dispatch never waits on a worker known dead while
 * another one answers. When such a connection fails before it was ever up
 * (nothing of its dispatches was written), each of its dispatches moves to
 * another live member, trying each member at most once. */
#include <string.h>

#include "alloc.h"
#include "dispatch_int.h"
#include "error.h"

typedef struct member_s {
  char *address;
  uvw_conn_t *conn;    /* NULL while down */
  uint64_t backoff_ms; /* the wait before the next attempt once down */
  uint64_t retry_at;   /* loop time of the next attempt while down */
  int was_up;          /* the current connection got established */
} member_t;

/* Backoff between reconnection attempts of a member: doubles on every
 * attempt that fails before the connection was up, reset once it was. */
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000

struct uvw_pool_s {
  uv_loop_t *loop;
  member_t *members;
  size_t count, turn;
  uint64_t timeout_ms;
  int unref; /* uvw_pool_set_ref(p, 0), for members opened later too */
  uint64_t next_id; /* dispatch ids, shared by the members: a dispatch keeps its id when it moves */
  uv_timer_t retry; /* background reconnection (unref'd: keeps no loop alive) */
  size_t closing; /* connections still closing */
  uvw_conn_close_cb close_cb;
  void *close_arg;
};

static int member_open(uvw_pool_t *p, member_t *m);
static void arm_retry(uvw_pool_t *p);

int uvw_pool_open(uv_loop_t *loop, const char *const *addresses, size_t count, uvw_pool_t **out) {
  if (loop == NULL) return uvw__error_arg(__func__, "loop", "is NULL");
  if (addresses == NULL || count == 0) return uvw__error_arg(__func__, "addresses", "is NULL or empty");
  if (out == NULL) return uvw__error_arg(__func__, "out", "is NULL");
  uvw__addr_t a;
  for (size_t i = 0; i < count; i++) {
    int rc = uvw__addr_parse(addresses[i], &a);
    if (rc != 0) return rc;
  }
  uvw_pool_t *p = uvw__calloc(1, sizeof(*p));
  member_t *m = uvw__calloc(count, sizeof(*m));
  int ok = p && m;
  for (size_t i = 0; ok && i < count; i++) ok = (m[i].address = uvw__strndup(addresses[i], strlen(addresses[i]))) != 0;
  if (!ok) {
    for (size_t i = 0; m && i < count; i++) uvw__free(m[i].address);
    uvw__free(m);
    uvw__free(p);
    return uvw__error_nomem("pool");
  }
  p->loop = loop;
  p->members = m;
  p->count = count;
  p->next_id = 1;
  for (size_t i = 0; i < count; i++) m[i].backoff_ms = BACKOFF_MIN_MS;
  uv_timer_init(loop, &p->retry);
  p->retry.data = p;
  uv_unref((uv_handle_t *)&p->retry);
  /* Connect to all at once: the first dispatches already spread. */
  for (size_t i = 0; i < count; i++) member_open(p, &m[i]);
  arm_retry(p);
  *out = p;
  return 0;
}

size_t uvw_pool_size(const uvw_pool_t *p) { return p ? p->count : 0; }

void uvw_pool_set_dispatch_timeout(uvw_pool_t *p, uint64_t ms) {
  if (p == NULL) return;
  p->timeout_ms = ms;
  for (size_t i = 0; i < p->count; i++)
    if (p->members[i].conn) uvw_conn_set_dispatch_timeout(p->members[i].conn, ms);
}

void uvw_pool_set_ref(uvw_pool_t *p, int ref) {
  if (p == NULL) return;
  p->unref = !ref;
  for (size_t i = 0; i < p->count; i++)
    if (p->members[i].conn) uvw_conn_set_ref(p->members[i].conn, ref);
}

/* ---- member states ------------------------------------------------------------ */

static void on_retry(uv_timer_t *t);

/* A member's connection failed before it was up, so nothing of d left:
 * d goes to the next member in ring order, from the one it was first given
 * to, that is connected or connecting. route[0]: that first member's
 * index; route[1]: how far around the ring d has come (0: not yet moved),
 * so no member gets it twice. Left where it is (to fail) when none is live. */
static void reroute(void *arg, uvw_conn_t *from, uvw_dispatch_t *d) {
  uvw_pool_t *p = arg;
  size_t *route = uvw__dispatch_route(d);
  if (route[1] == 0) {
    size_t first = 0;
    while (first < p->count && p->members[first].conn != from) first++;
    if (first == p->count) return;
    route[0] = first;
    route[1] = 1;
  }
  while (route[1] < p->count) {
    uvw_conn_t *to = p->members[(route[0] + route[1]++) % p->count].conn;
    if (to && to != from && !uvw_conn_is_dead(to) && uvw__conn_adopt(to, d) == 0) return;
  }
}

static int member_open(uvw_pool_t *p, member_t *m) {
  m->was_up = 0;
  if (uvw_conn_open(p->loop, m->address, &m->conn) != 0) {
    m->conn = NULL;
    return -1;
  }
  uvw__conn_share_ids(m->conn, &p->next_id, reroute, p);
  if (p->timeout_ms) uvw_conn_set_dispatch_timeout(m->conn, p->timeout_ms);
  if (p->unref) uvw_conn_set_ref(m->conn, 0);
  return 0;
}

/* The pool stops hearing of a member's connection it lets go. */
static void member_close(member_t *m, uvw_conn_close_cb cb, void *arg) {
  uvw__conn_share_ids(m->conn, NULL, NULL, NULL);
  uvw_conn_close(m->conn, cb, arg);
  m->conn = NULL;
}

/* Notice what happened to m's connection since last time: up (backoff
 * reset) or dead (closed, m down until retry_at). */
static void member_refresh(uvw_pool_t *p, member_t *m) {
  if (m->conn == NULL) return;
  if (uvw__conn_is_up(m->conn)) {
    m->was_up = 1;
    m->backoff_ms = BACKOFF_MIN_MS;
    return;
  }
  if (!uvw_conn_is_dead(m->conn)) return; /* still connecting */
  member_close(m, NULL, NULL);
  if (m->was_up)
    m->backoff_ms = BACKOFF_MIN_MS;
  else if ((m->backoff_ms *= 2) > BACKOFF_MAX_MS)
    m->backoff_ms = BACKOFF_MAX_MS;
  m->retry_at = uv_now(p->loop) + m->backoff_ms;
}

/* Re-arm the background timer for the earliest member not up: down ones
 * at their retry time, connecting ones polled at their backoff. */
static void arm_retry(uvw_pool_t *p) {
  uint64_t now = uv_now(p->loop), next = UINT64_MAX;
  for (size_t i = 0; i < p->count; i++) {
    member_t *m = &p->members[i];
    uint64_t at = m->conn == NULL ? m->retry_at : uvw__conn_is_up(m->conn) ? UINT64_MAX : now + m->backoff_ms;
    if (at < next) next = at;
  }
  if (next == UINT64_MAX)
    uv_timer_stop(&p->retry);
  else
    uv_timer_start(&p->retry, on_retry, next > now ? next - now : 0, 0);
}

static void on_retry(uv_timer_t *t) {
  uvw_pool_t *p = t->data;
  uint64_t now = uv_now(p->loop);
  for (size_t i = 0; i < p->count; i++) {
    member_t *m = &p->members[i];
    member_refresh(p, m);
    if (m->conn == NULL && m->retry_at <= now) member_open(p, m);
  }
  arm_retry(p);
}

/* The next member in turn that satisfies want (1: up, 0: connecting). */
static member_t *member_pick(uvw_pool_t *p, int want_up) {
  for (size_t tries = 0; tries < p->count; tries++) {
    member_t *m = &p->members[(p->turn + tries) % p->count];
    if (m->conn == NULL || uvw__conn_is_up(m->conn) != want_up) continue;
    p->turn += tries + 1;
    return m;
  }
  return NULL;
}

uvw_conn_t *uvw_pool_next(uvw_pool_t *p) {
  if (p == NULL) {
    uvw__error_arg(__func__, "pool", "is NULL");
    return NULL;
  }
  for (size_t i = 0; i < p->count; i++) member_refresh(p, &p->members[i]);
  member_t *m = member_pick(p, 1);
  if (m == NULL) m = member_pick(p, 0);
  if (m == NULL) {
    /* Every member is down: try the one due first now rather than fail
     * without trying (its worker may just have come back). */
    for (size_t i = 0; i < p->count; i++)
      if (m == NULL || p->members[i].retry_at < m->retry_at) m = &p->members[i];
    p->turn = (size_t)(m - p->members) + 1;
    if (member_open(p, m) != 0) {
      arm_retry(p);
      return NULL; /* the failure's detail is the thread's last error */
    }
  }
  arm_retry(p);
  return m->conn;
}

static void member_closed(void *arg) {
  uvw_pool_t *p = arg;
  if (--p->closing > 0) return;
  uvw_conn_close_cb cb = p->close_cb;
  void *cb_arg = p->close_arg;
  for (size_t i = 0; i < p->count; i++) uvw__free(p->members[i].address);
  uvw__free(p->members);
  uvw__free(p);
  if (cb) cb(cb_arg);
}

static void retry_closed(uv_handle_t *h) { member_closed(h->data); }

void uvw_pool_close(uvw_pool_t *p, uvw_conn_close_cb cb, void *arg) {
  if (p == NULL) return;
  p->close_cb = cb;
  p->close_arg = arg;
  p->closing = 2; /* held until every close is started; the retry timer */
  uv_close((uv_handle_t *)&p->retry, retry_closed);
  for (size_t i = 0; i < p->count; i++)
    if (p->members[i].conn) {
      p->closing++;
      member_close(&p->members[i], member_closed, p);
    }
  member_closed(p);
}
