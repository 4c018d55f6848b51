/* The worker: listeners, accepted connections and the routine registry. The
 * per-dispatch logic lives in call.c. */
#define _GNU_SOURCE /* struct ucred */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "wire_delta.h"
#include "wire_frame.h"
#include "worker_int.h"

struct uvw__listener_s {
  uvw__link_t link; /* only its handle is used: listeners never read */
  uvw_worker_t *worker;
  char address[160];
  int owns_path; /* a unix socket file this worker created: removed at close */
  uvw__listener_t *next;
};

static void listen_defaults(uvw_worker_t *w);


void uvw__worker_kick_cb(uv_idle_t *idle) { uvw__call_run_kicked(idle->data); }

/* ---- limits ------------------------------------------------------------------ */

void uvw_worker_limits_default(uvw_worker_limits_t *out) {
  if (out == NULL) return;
  *out = (uvw_worker_limits_t){.max_connections = 256,
                               .max_dispatches = 1024,
                               .max_inflight_bytes = (size_t)64 << 20,
                               .max_stubs = 1024,
                               .max_chains = 8,
                               .delta_chains = UVW__DEFAULT_DELTA_CHAINS,
                               .write_high_water = (size_t)8 << 20,
                               .frame_timeout_ms = 10000,
                               .idle_timeout_ms = 300000};
}

static void sweep_start(uvw_worker_t *w);

int uvw_worker_set_limits(uvw_worker_t *w, const uvw_worker_limits_t *limits) {
  if (w == NULL) return uvw__error_arg(__func__, "w", "is NULL");
  if (limits == NULL) return uvw__error_arg(__func__, "limits", "is NULL");
  if (limits->max_chains > UVW__MAX_CHAINS_CAP) return uvw__error_arg(__func__, "limits", "has max_chains over 64");
  if (limits->delta_chains > UVW__DELTA_MAX_CHAINS)
    return uvw__error_arg(__func__, "limits", "has delta_chains over 1024");
  uvw_worker_limits_t d, l = *limits;
  uvw_worker_limits_default(&d);
  if (!l.max_connections) l.max_connections = d.max_connections;
  if (!l.max_dispatches) l.max_dispatches = d.max_dispatches;
  if (!l.max_inflight_bytes) l.max_inflight_bytes = d.max_inflight_bytes;
  if (!l.max_stubs) l.max_stubs = d.max_stubs;
  if (!l.max_chains) l.max_chains = d.max_chains;
  if (!l.delta_chains) l.delta_chains = d.delta_chains;
  if (!l.write_high_water) l.write_high_water = d.write_high_water;
  if (!l.frame_timeout_ms) l.frame_timeout_ms = d.frame_timeout_ms;
  if (!l.idle_timeout_ms) l.idle_timeout_ms = d.idle_timeout_ms;
  w->limits = l;
  for (uvw__wconn_t *c = w->conns; c; c = c->next) c->link.high_water = l.write_high_water;
  if (!w->closing) sweep_start(w);
  return 0;
}

int uvw_worker_set_delta_manifests(uvw_worker_t *w, int on) {
  if (w == NULL) return uvw__error_arg(__func__, "w", "is NULL");
  int was = !w->delta_off;
  w->delta_off = !on;
  return was;
}

int uvw_worker_get_limits(const uvw_worker_t *w, uvw_worker_limits_t *out) {
  if (w == NULL) return uvw__error_arg(__func__, "w", "is NULL");
  if (out == NULL) return uvw__error_arg(__func__, "out", "is NULL");
  *out = w->limits;
  return 0;
}

int uvw_worker_stats(const uvw_worker_t *w, uvw_worker_stats_t *out) {
  if (w == NULL) return uvw__error_arg(__func__, "w", "is NULL");
  if (out == NULL) return uvw__error_arg(__func__, "out", "is NULL");
  memset(out, 0, sizeof(*out));
  out->refused_connections = w->refused;
  out->timed_out_peers = w->timed_out;
  for (const uvw__wconn_t *c = w->conns; c; c = c->next) {
    out->connections++;
    out->dispatches += c->calls.count;
    out->inflight_bytes += c->inflight_bytes;
    out->read_buffer_bytes += c->link.cap;
    out->write_queue_bytes += uv_stream_get_write_queue_size(&c->link.h.stream);
    out->paused_peers += c->link.paused != 0;
    for (size_t i = 0; i < c->calls.nbuckets; i++)
      for (const uvw__idnode_t *n = c->calls.buckets[i]; n; n = n->next) {
        size_t k = uvw__call_chains((const uvw_call_t *)n);
        if (k > out->max_call_chains) out->max_call_chains = k;
      }
  }
  return 0;
}

int uvw_worker_open(uv_loop_t *loop, uvw_worker_t **out) {
  if (loop == NULL) return uvw__error_arg(__func__, "loop", "is NULL");
  if (out == NULL) return uvw__error_arg(__func__, "out", "is NULL");
  uvw_worker_t *w = uvw__calloc(1, sizeof(*w));
  if (w == NULL) return uvw__error_nomem("worker");
  w->loop = loop;
  w->loop_thread = uv_thread_self();
  w->default_timeout_ms = UVW__DEFAULT_DISPATCH_TIMEOUT_MS;
  uvw_worker_limits_default(&w->limits);
  uv_idle_init(loop, &w->kick);
  w->kick.data = w;
  uv_unref((uv_handle_t *)&w->kick);
  uv_timer_init(loop, &w->sweep);
  w->sweep.data = w;
  uv_unref((uv_handle_t *)&w->sweep);
  w->open_handles = 2;
  sweep_start(w);
  listen_defaults(w);
  *out = w;
  return 0;
}

int uvw_worker_register(uvw_worker_t *w, const char *name, uvw_routine_cb fn, void *arg, unsigned flags) {
  if (w == NULL) return uvw__error_arg(__func__, "w", "is NULL");
  if (name == NULL || *name == '\0') return uvw__error_arg(__func__, "name", "is NULL or empty");
  if (fn == NULL) return uvw__error_arg(__func__, "fn", "is NULL");
  if (flags & ~UVW_ROUTINE_STREAM) return uvw__error_arg(__func__, "flags", "has unknown bits");
  if (uvw__worker_find(w, name)) {
    uvw_error_t *e = uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "%s: routine \"%s\" is already registered",
                                    __func__, name);
    uvw__error_field(e, "function", "%s", __func__);
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
      w->nconns--;
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

/* ---- a request with a value this worker cannot decode ------------------------------ */

/* A well-formed Task with an argument this worker cannot decode (an opaque
 * type without a codec here): only that dispatch is refused (a Nack with
 * the decode error; nothing runs, its Next is dropped as a request for an
 * unknown dispatch) and every other dispatch of the peer goes on. A Send
 * whose value cannot be decoded likewise fails its dispatch alone (an
 * Exception with the decode error, call.c). Returns 1 when handled, 0 to
 * drop the peer. */
static int fail_one_dispatch(uvw__wconn_t *c, const uint8_t *data, size_t len, const uvw_error_t *e) {
  uint64_t id;
  unsigned kind;
  if (uvw_error_code(e) != UVW_ESERIALIZE || uvw__frame_peek(data, len, &id, &kind) != 0) return 0;
  if (kind == 4) { /* Send */
    uvw__call_undecodable_send(c, id, e);
    return 1;
  }
  if (kind != 2) return 0;
  uvw_frame_t *f = uvw_frame_new(UVW_FRAME_NACK, id);
  int ok = f && uvw_frame_set_error(f, e) == 0;
  if (ok) uvw__link_send_frame(&c->link, f);
  uvw_frame_free(f);
  return ok;
}

static void conn_frame(uvw__link_t *link, const uint8_t *data, size_t len) {
  uvw__wconn_t *c = link->owner;
  uvw_frame_t *f;
  /* The manifest waits until its dispatch is known (call.c): a frame for
   * no dispatch costs no stubs. */
  if (uvw__frame_decode_request_deferred(data, len, &f) != 0) {
    uvw_error_t *one = uvw_error_ref(uvw_last_error());
    /* Its manifest still reaches the book, whatever becomes of the frame. */
    uvw__link_delta_receive_raw(link, data, len);
    int handled = fail_one_dispatch(c, data, len, one);
    uvw_error_unref(one);
    if (handled) return;
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
  /* Every frame's manifest reaches the book, its dispatch known or not. */
  if (uvw_frame_kind(f) == UVW_FRAME_TASK) uvw__link_delta_peer(link, uvw__frame_delta_chains(f));
  uvw__link_delta_receive(link, f);
  if (uvw_frame_kind(f) == UVW_FRAME_TASK)
    uvw__call_task(c, f, len + 4);
  else
    uvw__call_request(c, f, len + 4);
}

/* Adopt an accepted stream (rc: the result of uv_accept); on failure the
 * connection is dropped again. */
static int conn_add(uvw_worker_t *w, uvw__wconn_t *c, int rc) {
  c->next = w->conns;
  w->conns = c;
  w->nconns++;
  c->link.high_water = w->limits.write_high_water;
  c->link.last_read = uv_now(w->loop);
  if (rc == 0 && w->nconns > w->limits.max_connections) {
    /* Accepted only to be closed: left in the backlog it would stop the
     * listener from accepting anyone once the others leave. */
    uvw_error_t *e = uvw__error_new(UVW_ENACK, UVW_KIND_WOOL_ERROR,
                                    "connection refused: the worker serves at most %zu connections",
                                    w->limits.max_connections);
    uvw__error_field(e, "max_connections", "%zu", w->limits.max_connections);
    uvw__worker_report(w, e);
    uvw_error_unref(e);
    w->refused++;
    rc = UVW_ENACK;
  }
  if (rc == 0) rc = uvw__link_start(&c->link, conn_frame, conn_fail);
  if (rc != 0) conn_drop(c);
  return rc;
}

/* ---- deadlines: a partial frame too old, a peer idle too long ----------------- */

static int conn_expired(uvw_worker_t *w, uvw__wconn_t *c, uint64_t now) {
  const char *why = NULL;
  uint64_t limit = 0;
  if (c->link.paused) {
    /* Not read by our choice: only a peer that never reads its answers
     * is dropped, after the idle timeout. */
    if (now - c->link.paused_since >= w->limits.idle_timeout_ms) {
      why = "the peer did not read its answers";
      limit = w->limits.idle_timeout_ms;
    }
  } else if (c->link.partial_since && now - c->link.partial_since >= w->limits.frame_timeout_ms) {
    why = "a frame took too long to arrive";
    limit = w->limits.frame_timeout_ms;
  } else if (c->calls.count == 0 && c->link.len == 0 && now - c->link.last_read >= w->limits.idle_timeout_ms) {
    why = "the peer was idle too long";
    limit = w->limits.idle_timeout_ms;
  }
  if (why == NULL) return 0;
  uvw_error_t *e = uvw__error_new(UVW_ETIMEDOUT, UVW_KIND_WOOL_ERROR, "peer dropped: %s (%llu ms)", why,
                                  (unsigned long long)limit);
  uvw__error_field(e, "timeout_ms", "%llu", (unsigned long long)limit);
  uvw__error_field(e, "buffered_bytes", "%zu", c->link.len);
  uvw__worker_report(w, e);
  uvw_error_unref(e);
  w->timed_out++;
  return 1;
}

static void on_sweep(uv_timer_t *t) {
  uvw_worker_t *w = t->data;
  uint64_t now = uv_now(w->loop);
  for (uvw__wconn_t *c = w->conns, *next; c; c = next) {
    next = c->next;
    if (!c->link.closing && !c->link.failed && conn_expired(w, c, now)) {
      c->link.failed = 1;
      conn_drop(c);
    }
  }
}

/* A quarter of the shorter deadline (10 ms to 1 s): a peer is dropped at
 * most that late. One timer whatever the number of connections. */
static void sweep_start(uvw_worker_t *w) {
  uint64_t d = w->limits.frame_timeout_ms < w->limits.idle_timeout_ms ? w->limits.frame_timeout_ms
                                                                       : w->limits.idle_timeout_ms;
  d /= 4;
  if (d < 10) d = 10;
  if (d > 1000) d = 1000;
  uv_timer_start(&w->sweep, on_sweep, d, d);
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
  /* Its books come when a Task asks for delta manifests. */
  c->link.delta_offer = w->delta_off ? 0 : (uint32_t)w->limits.delta_chains;
  w->open_handles++;
  return c;
}

static void on_connection(uv_stream_t *server, int status) {
  uvw__listener_t *l = server->data;
  uvw_worker_t *w = l->worker;
  if (status < 0 || w->closing) return;
  uvw__wconn_t *c = conn_new(w, server->type == UV_NAMED_PIPE);
  if (c == NULL) return; /* the pending connection stays in the backlog */
  int rc = uv_accept(server, &c->link.h.stream);
  if (rc == 0 && server->type == UV_NAMED_PIPE) rc = uvw__worker_check_peer(w, &c->link.h.pipe);
  conn_add(w, c, rc);
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

static void listener_update_ref(const uvw_worker_t *w, uvw__listener_t *l) {
  uv_handle_t *h = (uv_handle_t *)&l->link.h;
  if (w->listeners_unref) uv_unref(h);
  else uv_ref(h);
}

/* Adopt a listener that is bound and listening. */
static void listener_publish(uvw_worker_t *w, uvw__listener_t *l) {
  /* Keep them in the order they were added: uvw_worker_address(i). */
  uvw__listener_t **p = &w->listeners;
  while (*p) p = &(*p)->next;
  *p = l;
  listener_update_ref(w, l);
}

static uvw__listener_t *listener_new(uvw_worker_t *w, int is_pipe, int *rc) {
  uvw__listener_t *l = uvw__calloc(1, sizeof(*l));
  if (l == NULL) {
    *rc = uvw__error_nomem("listener");
    return NULL;
  }
  l->worker = w;
  *rc = uvw__link_init(&l->link, w->loop, is_pipe, l);
  if (*rc != 0) {
    uvw__free(l);
    return NULL;
  }
  w->open_handles++;
  l->link.h.handle.data = l;
  return l;
}

/* Undo listener_new after a failed bind/open/listen, with the detail. */
static int listener_fail(uvw__listener_t *l, const char *address, int rc) {
  uvw_error_t *e = uvw__error_set(rc, UVW_KIND_WOOL_ERROR, "cannot listen on %s: %s", address, uv_strerror(rc));
  uvw__error_field(e, "address", "%s", address);
  uvw__error_field(e, "libuv_error", "%s", uv_err_name(rc));
  l->link.h.handle.data = &l->link;
  uvw__link_close(&l->link, listener_closed);
  return rc;
}

int uvw_worker_listen(uvw_worker_t *w, const char *address) {
  if (w == NULL) return uvw__error_arg(__func__, "w", "is NULL");
  if (address && strncmp(address, "fd:", 3) == 0) return uvw__worker_listen_fd(w, address);
  uvw__addr_t a;
  int rc = uvw__addr_parse(address, &a);
  if (rc == 0 && !a.is_pipe) rc = uvw__worker_check_remote(w, address, &a.sa);
  if (rc != 0) return rc;
  uvw__listener_t *l = listener_new(w, a.is_pipe, &rc);
  if (l == NULL) return rc;
  rc = a.is_pipe ? uvw__worker_bind_pipe(w, &l->link.h.pipe, a.path)
                 : uv_tcp_bind(&l->link.h.tcp, (struct sockaddr *)&a.sa, 0);
  if (rc == 0) rc = uv_listen(&l->link.h.stream, 511, on_connection);
  if (rc != 0) {
    if (rc != UV_EADDRINUSE && a.is_pipe) remove(a.path); /* bound, then failed: ours */
    return listener_fail(l, address, rc);
  }
  l->owns_path = a.is_pipe;
  describe(l, &a);
  listener_publish(w, l);
  return 0;
}

/* ---- listening: who may connect, stale sockets, sockets passed in ----------------- */

static void listen_defaults(uvw_worker_t *w) {
  w->socket_mode = 0600;
  w->socket_gid = -1;
  w->allow_uids[0] = (uint32_t)geteuid();
  w->nallow_uids = 1;
}

static int sys_error(void) { return uv_translate_sys_error(errno); }

/* A socket file nobody answers on is what a killed worker leaves behind:
 * removed. One that answers (or whose backlog is full: EAGAIN) belongs to
 * a live process and is left alone, so the bind fails with EADDRINUSE. */
static void remove_stale_socket(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode)) return;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sa.sun_path)) return;
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return;
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno == ECONNREFUSED) unlink(path);
  close(fd);
}

/* Bind, then restrict the file before listen(): nobody can connect to a
 * socket that is not listening yet, so there is no window with the
 * umask's permissions. */
int uvw__worker_bind_pipe(uvw_worker_t *w, uv_pipe_t *pipe, const char *path) {
  remove_stale_socket(path);
  int rc = uv_pipe_bind(pipe, path);
  if (rc != 0) return rc;
  if (chmod(path, w->socket_mode) != 0) return sys_error();
  if (w->socket_gid >= 0 && chown(path, (uid_t)-1, (gid_t)w->socket_gid) != 0) return sys_error();
  return 0;
}

static int is_loopback(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET) return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
  const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
  if (IN6_IS_ADDR_LOOPBACK(a)) return 1;
  return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
}

/* A worker trusts whoever reaches it: beyond loopback only when asked. */
int uvw__worker_check_remote(uvw_worker_t *w, const char *address, const struct sockaddr_storage *ss) {
  if (w->allow_remote || is_loopback(ss)) return 0;
  uvw_error_t *e = uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR,
                                  "uvw_worker_listen: %s is not a loopback address; a worker authenticates nobody, "
                                  "so listening there needs uvw_worker_set_allow_remote (--allow-remote)",
                                  address);
  uvw__error_field(e, "function", "%s", "uvw_worker_listen");
  uvw__error_field(e, "address", "%s", address);
  return UVW_EINVAL;
}

static int id_listed(const uint32_t *ids, size_t n, uint32_t id) {
  for (size_t i = 0; i < n; i++)
    if (ids[i] == id) return 1;
  return 0;
}

/* SO_PEERCRED: the uid/gid of the process that connected. */
int uvw__worker_check_peer(uvw_worker_t *w, uv_pipe_t *pipe) {
  uv_os_fd_t fd;
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (uv_fileno((uv_handle_t *)pipe, &fd) != 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return UV_EACCES;
  if (id_listed(w->allow_uids, w->nallow_uids, (uint32_t)cred.uid) ||
      id_listed(w->allow_gids, w->nallow_gids, (uint32_t)cred.gid))
    return 0;
  uvw_error_t *e = uvw__error_new(UVW_EINVAL, UVW_KIND_WOOL_ERROR, "refused a peer: uid %u gid %u is not allowed",
                                  (unsigned)cred.uid, (unsigned)cred.gid);
  uvw__error_field(e, "peer_uid", "%u", (unsigned)cred.uid);
  uvw__error_field(e, "peer_gid", "%u", (unsigned)cred.gid);
  uvw__error_field(e, "peer_pid", "%d", (int)cred.pid);
  uvw__worker_report(w, e);
  uvw_error_unref(e);
  return UV_EACCES;
}

/* "fd:N": a socket already bound and listening, passed by a supervisor
 * (systemd socket activation: LISTEN_FDS, from fd 3). */
static int parse_fd(const char *address, int *fd) {
  char *end;
  errno = 0;
  long n = strtol(address + 3, &end, 10);
  if (address[3] < '0' || address[3] > '9' || *end != '\0' || errno != 0 || n > 65535) return -1;
  *fd = (int)n;
  return 0;
}

static int bad_fd(const char *address, const char *why) {
  uvw_error_t *e = uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "uvw_worker_listen: %s: %s", address, why);
  uvw__error_field(e, "function", "%s", "uvw_worker_listen");
  uvw__error_field(e, "address", "%s", address);
  return UVW_EINVAL;
}

/* What kind of socket fd is: 1 unix, 0 TCP, -1 neither or not listening. */
static int fd_kind(int fd, struct sockaddr_storage *ss) {
  int type = 0, acc = 0;
  socklen_t len = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) return -1;
  len = sizeof(acc);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) != 0 || !acc) return -1;
  len = sizeof(*ss);
  if (getsockname(fd, (struct sockaddr *)ss, &len) != 0) return -1;
  return ss->ss_family == AF_UNIX ? 1 : ss->ss_family == AF_INET || ss->ss_family == AF_INET6 ? 0 : -1;
}

int uvw__worker_listen_fd(uvw_worker_t *w, const char *address) {
  int fd, rc;
  struct sockaddr_storage ss;
  if (parse_fd(address, &fd) != 0) return bad_fd(address, "expected fd:N with N a file descriptor number");
  int kind = fd_kind(fd, &ss);
  if (kind < 0) return bad_fd(address, "not a listening stream socket (unix or TCP)");
  if (kind == 0 && (rc = uvw__worker_check_remote(w, address, &ss)) != 0) return rc;
  uvw__listener_t *l = listener_new(w, kind, &rc);
  if (l == NULL) return rc;
  rc = kind ? uv_pipe_open(&l->link.h.pipe, fd) : uv_tcp_open(&l->link.h.tcp, fd);
  if (rc == 0) rc = uv_listen(&l->link.h.stream, 511, on_connection);
  if (rc != 0) return listener_fail(l, address, rc);
  /* The supervisor created the file (and owns it): never removed here. */
  uvw__addr_t a = {.is_pipe = kind};
  if (kind) {
    size_t n = sizeof(a.path);
    if (uv_pipe_getsockname(&l->link.h.pipe, a.path, &n) != 0) a.path[0] = '\0';
  }
  describe(l, &a);
  listener_publish(w, l);
  return 0;
}

int uvw_worker_set_socket_mode(uvw_worker_t *w, unsigned mode) {
  if (w == NULL) return uvw__error_arg(__func__, "w", "is NULL");
  if (mode & ~0777u) return uvw__error_arg(__func__, "mode", "has bits beyond 0777");
  w->socket_mode = mode;
  return 0;
}

int uvw_worker_set_socket_group(uvw_worker_t *w, long gid) {
  if (w == NULL) return uvw__error_arg(__func__, "w", "is NULL");
  if (gid < -1 || gid > (long)UINT32_MAX - 1) return uvw__error_arg(__func__, "gid", "is not a group id or -1");
  w->socket_gid = gid;
  return 0;
}

static int allow_id(uint32_t *ids, size_t *n, uint32_t id, const char *fn) {
  if (id_listed(ids, *n, id)) return 0;
  if (*n == UVW__MAX_PEER_IDS) return uvw__error_arg(fn, "id", "is one too many (32 per list)");
  ids[(*n)++] = id;
  return 0;
}

int uvw_worker_allow_uid(uvw_worker_t *w, uint32_t uid) {
  if (w == NULL) return uvw__error_arg(__func__, "w", "is NULL");
  return allow_id(w->allow_uids, &w->nallow_uids, uid, __func__);
}

int uvw_worker_allow_gid(uvw_worker_t *w, uint32_t gid) {
  if (w == NULL) return uvw__error_arg(__func__, "w", "is NULL");
  return allow_id(w->allow_gids, &w->nallow_gids, gid, __func__);
}

int uvw_worker_set_allow_remote(uvw_worker_t *w, int allow) {
  if (w == NULL) return uvw__error_arg(__func__, "w", "is NULL");
  w->allow_remote = allow != 0;
  return 0;
}

int uvw_worker_set_ref(uvw_worker_t *w, int ref) {
  if (w == NULL) return uvw__error_arg(__func__, "w", "is NULL");
  w->listeners_unref = !ref;
  for (uvw__listener_t *l = w->listeners; l; l = l->next) listener_update_ref(w, l);
  return 0;
}

int uvw_worker_address(uvw_worker_t *w, size_t i, char *buf, size_t len) {
  if (w == NULL) return uvw__error_arg(__func__, "w", "is NULL");
  if (buf == NULL) return uvw__error_arg(__func__, "buf", "is NULL");
  uvw__listener_t *l = w->listeners;
  while (l && i--) l = l->next;
  if (l == NULL) return uvw__error_arg(__func__, "i", "is past the last listener");
  if (strlen(l->address) >= len) return uvw__error_arg(__func__, "len", "is too small for the address");
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
    if (l->owns_path) {
      /* libuv leaves the socket file behind; the worker created it. */
      const char *path = l->address + 5;
      remove(path);
    }
    l->link.h.handle.data = &l->link;
    uvw__link_close(&l->link, listener_closed);
  }
  while (w->conns) conn_drop(w->conns);
  uv_close((uv_handle_t *)&w->kick, kick_closed);
  uv_close((uv_handle_t *)&w->sweep, kick_closed);
}
