/* A small pool: round-robin over connections to several workers. Finding
 * and supervising workers is not ours (docs/dispatch.md shows how to run
 * them under systemd); the pool only spreads dispatches and replaces a
 * connection it finds dead when that connection's turn comes. */
#include <string.h>

#include "alloc.h"
#include "dispatch_int.h"
#include "error.h"

typedef struct member_s {
  char *address;
  uvw_conn_t *conn;
} member_t;

struct uvw_pool_s {
  uv_loop_t *loop;
  member_t *members;
  size_t count, turn;
  uint64_t timeout_ms;
  size_t closing; /* connections still closing */
  uvw_conn_close_cb close_cb;
  void *close_arg;
};

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

uvw_conn_t *uvw_pool_next(uvw_pool_t *p) {
  if (p == NULL) {
    uvw__error_arg(__func__, "pool", "is NULL");
    return NULL;
  }
  for (size_t tries = 0; tries < p->count; tries++) {
    member_t *m = &p->members[p->turn++ % p->count];
    if (m->conn && uvw_conn_is_dead(m->conn)) {
      uvw_conn_close(m->conn, NULL, NULL);
      m->conn = NULL;
    }
    if (m->conn == NULL && uvw_conn_open(p->loop, m->address, &m->conn) != 0) continue;
    if (p->timeout_ms) uvw_conn_set_dispatch_timeout(m->conn, p->timeout_ms);
    return m->conn;
  }
  return NULL; /* the last failure's detail is the thread's last error */
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

void uvw_pool_close(uvw_pool_t *p, uvw_conn_close_cb cb, void *arg) {
  if (p == NULL) return;
  p->close_cb = cb;
  p->close_arg = arg;
  p->closing = 1; /* held until every close is started */
  for (size_t i = 0; i < p->count; i++)
    if (p->members[i].conn) {
      p->closing++;
      uvw_conn_close(p->members[i].conn, member_closed, p);
      p->members[i].conn = NULL;
    }
  member_closed(p);
}
