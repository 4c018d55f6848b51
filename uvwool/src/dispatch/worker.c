/* The worker: listeners, accepted connections and the routine registry. The
 * per-dispatch logic lives in call.c. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "worker_int.h"

struct uvw__listener_s {
  uvw__link_t link; /* only its handle is used: listeners never read */
  uvw_worker_t *worker;
  char address[160];
  uvw__listener_t *next;
};


void uvw__worker_kick_cb(uv_idle_t *idle) { uvw__call_run_kicked(idle->data); }

int uvw_worker_open(uv_loop_t *loop, uvw_worker_t **out) {
  if (loop == NULL || out == NULL) return UVW_EINVAL;
  uvw_worker_t *w = uvw__calloc(1, sizeof(*w));
  if (w == NULL) return uvw__error_nomem("worker");
  w->loop = loop;
  w->loop_thread = uv_thread_self();
  w->default_timeout_ms = UVW__DEFAULT_DISPATCH_TIMEOUT_MS;
  uv_idle_init(loop, &w->kick);
  w->kick.data = w;
  uv_unref((uv_handle_t *)&w->kick);
  w->open_handles = 1;
  *out = w;
  return 0;
}

int uvw_worker_register(uvw_worker_t *w, const char *name, uvw_routine_cb fn, void *arg, unsigned flags) {
  if (w == NULL || name == NULL || *name == '\0' || fn == NULL || (flags & ~UVW_ROUTINE_STREAM)) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "bad routine registration");
    return UVW_EINVAL;
  }
  if (uvw__worker_find(w, name)) {
    uvw_error_t *e = uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "routine \"%s\" is already registered", name);
    uvw__error_field(e, "routine", "%s", name);
    return UVW_EINVAL;
  }
  uvw__routine_t *r = uvw__realloc(w->routines, (w->nroutines + 1) * sizeof(*r));
  if (r == NULL) return uvw__error_nomem("routine table");
  w->routines = r;
  char *copy = uvw__strndup(name, strlen(name));
  if (copy == NULL) return uvw__error_nomem("routine name");
  r[w->nroutines++] = (uvw__routine_t){copy, fn, arg, flags};
  return 0;
}

const uvw__routine_t *uvw__worker_find(const uvw_worker_t *w, const char *name) {
  for (size_t i = 0; i < w->nroutines; i++)
    if (strcmp(w->routines[i].name, name) == 0) return &w->routines[i];
  return NULL;
}

void uvw_worker_on_error(uvw_worker_t *w, uvw_worker_error_cb cb, void *arg) {
  w->on_error = cb;
  w->on_error_arg = arg;
}

void uvw_worker_set_dispatch_timeout(uvw_worker_t *w, uint64_t ms) {
  w->default_timeout_ms = ms ? ms : UVW__DEFAULT_DISPATCH_TIMEOUT_MS;
}

void uvw__worker_report(uvw_worker_t *w, const uvw_error_t *e) {
  if (w->on_error) w->on_error(w, e, w->on_error_arg);
}

/* ---- connections ------------------------------------------------------------ */

static void maybe_finish(uvw_worker_t *w);

static void conn_closed(uvw__link_t *link) {
  uvw__wconn_t *c = link->owner;
  uvw_worker_t *w = c->worker;
  uvw__idmap_free(&c->calls);
  uvw__free(c);
  w->open_handles--;
  maybe_finish(w);
}

static void conn_drop(uvw__wconn_t *c) {
  uvw_worker_t *w = c->worker;
  for (uvw__wconn_t **p = &w->conns; *p; p = &(*p)->next)
    if (*p == c) {
      *p = c->next;
      break;
    }
  uvw__call_orphan_all(c);
  uvw__link_close(&c->link, conn_closed);
}

static void conn_fail(uvw__link_t *link, int code) {
  uvw__wconn_t *c = link->owner;
  (void)code;
  /* A peer hanging up cleanly is not an error worth reporting. */
  const uvw_error_t *e = uvw_last_error();
  if (!(code == UVW_ECONNRESET && c->link.len == 0 && c->calls.count == 0)) uvw__worker_report(c->worker, e);
  conn_drop(c);
}

static void conn_frame(uvw__link_t *link, const uint8_t *data, size_t len) {
  uvw__wconn_t *c = link->owner;
  uvw_frame_t *f;
  if (uvw_frame_decode_request(data, len, &f) != 0) {
    /* Without a decodable frame there is no dispatch id to answer: the
     * stream cannot be trusted any more, so this peer is dropped. */
    uvw_error_t *e = uvw_error_ref(uvw_last_error());
    uvw__error_field(e, "peer", "dropped");
    uvw__worker_report(c->worker, e);
    uvw_error_unref(e);
    link->failed = 1;
    conn_drop(c);
    return;
  }
  if (uvw_frame_kind(f) == UVW_FRAME_TASK)
    uvw__call_task(c, f);
  else
    uvw__call_request(c, f);
}

/* Adopt an accepted stream (rc: the result of uv_accept); on failure the
 * connection is dropped again. */
static int conn_add(uvw_worker_t *w, uvw__wconn_t *c, int rc) {
  c->next = w->conns;
  w->conns = c;
  if (rc == 0) rc = uvw__link_start(&c->link, conn_frame, conn_fail);
  if (rc != 0) conn_drop(c);
  return rc;
}

static uvw__wconn_t *conn_new(uvw_worker_t *w, int is_pipe) {
  uvw__wconn_t *c = uvw__calloc(1, sizeof(*c));
  if (c == NULL) return NULL;
  c->worker = w;
  uvw__idmap_init(&c->calls);
  if (uvw__link_init(&c->link, w->loop, is_pipe, c) != 0) {
    uvw__free(c);
    return NULL;
  }
  w->open_handles++;
  return c;
}

static void on_connection(uv_stream_t *server, int status) {
  uvw__listener_t *l = server->data;
  uvw_worker_t *w = l->worker;
  if (status < 0 || w->closing) return;
  uvw__wconn_t *c = conn_new(w, server->type == UV_NAMED_PIPE);
  if (c == NULL) return; /* the pending connection stays in the backlog */
  conn_add(w, c, uv_accept(server, &c->link.h.stream));
}

/* ---- listeners ---------------------------------------------------------------- */

static void listener_closed(uvw__link_t *link) {
  uvw__listener_t *l = link->owner;
  uvw_worker_t *w = l->worker;
  uvw__free(l);
  w->open_handles--;
  maybe_finish(w);
}

static void describe(uvw__listener_t *l, const uvw__addr_t *a) {
  if (a->is_pipe) {
    snprintf(l->address, sizeof(l->address), "pipe:%s", a->path);
    return;
  }
  struct sockaddr_storage ss;
  int n = sizeof(ss);
  char ip[64] = "?";
  int port = 0;
  if (uv_tcp_getsockname(&l->link.h.tcp, (struct sockaddr *)&ss, &n) == 0) {
    if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
      snprintf(l->address, sizeof(l->address), "tcp:[%s]:%d", ip, port);
      return;
    }
    uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  }
  snprintf(l->address, sizeof(l->address), "tcp:%s:%d", ip, port);
}

int uvw_worker_listen(uvw_worker_t *w, const char *address) {
  uvw__addr_t a;
  int rc = uvw__addr_parse(address, &a);
  if (rc != 0) return rc;
  uvw__listener_t *l = uvw__calloc(1, sizeof(*l));
  if (l == NULL) return uvw__error_nomem("listener");
  l->worker = w;
  rc = uvw__link_init(&l->link, w->loop, a.is_pipe, l);
  if (rc != 0) {
    uvw__free(l);
    return rc;
  }
  w->open_handles++;
  l->link.h.handle.data = l;
  rc = a.is_pipe ? uv_pipe_bind(&l->link.h.pipe, a.path) : uv_tcp_bind(&l->link.h.tcp, (struct sockaddr *)&a.sa, 0);
  if (rc == 0) rc = uv_listen(&l->link.h.stream, 511, on_connection);
  if (rc != 0) {
    uvw_error_t *e = uvw__error_set(rc, UVW_KIND_WOOL_ERROR, "cannot listen on %s: %s", address, uv_strerror(rc));
    uvw__error_field(e, "address", "%s", address);
    uvw__error_field(e, "libuv_error", "%s", uv_err_name(rc));
    l->link.h.handle.data = &l->link;
    uvw__link_close(&l->link, listener_closed);
    return rc;
  }
  describe(l, &a);
  /* Keep them in the order they were added: uvw_worker_address(i). */
  uvw__listener_t **p = &w->listeners;
  while (*p) p = &(*p)->next;
  *p = l;
  return 0;
}

int uvw_worker_address(uvw_worker_t *w, size_t i, char *buf, size_t len) {
  uvw__listener_t *l = w->listeners;
  while (l && i--) l = l->next;
  if (l == NULL || buf == NULL || strlen(l->address) >= len) return UVW_EINVAL;
  strcpy(buf, l->address);
  return 0;
}

/* ---- close ---------------------------------------------------------------------- */

static void free_worker(uvw_worker_t *w) {
  for (size_t i = 0; i < w->nroutines; i++) uvw__free(w->routines[i].name);
  uvw__free(w->routines);
  uvw__free(w);
}

static void maybe_finish(uvw_worker_t *w) {
  if (!w->closing || w->open_handles > 0) return;
  if (w->close_cb) {
    uvw_worker_close_cb cb = w->close_cb;
    w->close_cb = NULL;
    cb(w->close_arg);
  }
  if (w->live_calls == 0) free_worker(w);
}

void uvw__worker_call_freed(uvw_worker_t *w) {
  w->live_calls--;
  if (w->closing && w->open_handles == 0 && w->live_calls == 0) free_worker(w);
}

static void kick_closed(uv_handle_t *h) {
  uvw_worker_t *w = h->data;
  w->open_handles--;
  maybe_finish(w);
}

void uvw_worker_close(uvw_worker_t *w, uvw_worker_close_cb cb, void *arg) {
  if (w == NULL || w->closing) return;
  w->closing = 1;
  w->close_cb = cb;
  w->close_arg = arg;
  while (w->listeners) {
    uvw__listener_t *l = w->listeners;
    w->listeners = l->next;
    if (l->link.h.handle.type == UV_NAMED_PIPE) {
      /* libuv leaves the socket file behind; the worker created it. */
      const char *path = l->address + 5;
      remove(path);
    }
    l->link.h.handle.data = &l->link;
    uvw__link_close(&l->link, listener_closed);
  }
  while (w->conns) conn_drop(w->conns);
  uv_close((uv_handle_t *)&w->kick, kick_closed);
}
