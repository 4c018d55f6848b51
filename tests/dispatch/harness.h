/* Cross-process test harness (header-only): start a real uvwool-worker
 * serving tests/dispatch/routines.c, talk to it from a libuv loop in the
 * test process, stop or kill it. */
#ifndef UVWOOL_DISPATCH_HARNESS_H
#define UVWOOL_DISPATCH_HARNESS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uvwool.h>

typedef struct dh_worker_s {
  pid_t pid;
  int out_fd;
  int naddr;
  char addr[4][200];
} dh_worker_t;

/* A fresh unix socket address for this process. */
static inline void dh_pipe_address(char *buf, size_t len) {
  static int n;
  snprintf(buf, len, "pipe:/tmp/uvwool-dt-%d-%d.sock", (int)getpid(), n++);
  remove(buf + 5);
}

/* When set, the next worker started writes its stderr (its reports) to
 * this file instead of the test's. */
static const char *dh_stderr_path;

/* Start a worker listening on each address (NULL-terminated list), with
 * extra arguments (a NULL-terminated list, may be NULL). Waits for its
 * "listening on" lines, which give the bound addresses (the port of
 * tcp:HOST:0). */
static inline void dh_start_args(dh_worker_t *w, const char *const *listen, const char *const *extra) {
  const char *argv[32];
  int argc = 0;
  argv[argc++] = UVWOOL_WORKER_PATH;
  argv[argc++] = "--routines";
  argv[argc++] = UVWOOL_TEST_ROUTINES;
  int expect = 0;
  for (; listen[expect]; expect++) {
    argv[argc++] = "--listen";
    argv[argc++] = listen[expect];
  }
  for (int i = 0; extra && extra[i] && argc < 31; i++) argv[argc++] = extra[i];
  argv[argc] = NULL;
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  memset(w, 0, sizeof(*w));
  pid_t parent = getpid();
  w->pid = fork();
  cr_assert_geq(w->pid, 0);
  if (w->pid == 0) {
    /* A failed assertion ends the test process without dh_stop: the
     * worker must not outlive it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    dup2(fds[1], 1);
    if (dh_stderr_path) {
      int err = open(dh_stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (err >= 0) dup2(err, 2);
    }
    close(fds[0]);
    close(fds[1]);
    execv(UVWOOL_WORKER_PATH, (char *const *)argv);
    _exit(127);
  }
  close(fds[1]);
  w->out_fd = fds[0];
  char buf[2048];
  size_t len = 0;
  const char *tag = "uvwool-worker: listening on ";
  while (w->naddr < expect) {
    struct pollfd p = {w->out_fd, POLLIN, 0};
    /* Generous: under valgrind the worker takes seconds to start. */
    cr_assert_gt(poll(&p, 1, 60000), 0, "the worker did not report it was listening");
    ssize_t n = read(w->out_fd, buf + len, sizeof(buf) - 1 - len);
    cr_assert_gt(n, 0, "the worker exited before listening");
    len += (size_t)n;
    buf[len] = '\0';
    char *nl;
    while ((nl = strchr(buf, '\n')) != NULL) {
      *nl = '\0';
      size_t alen = strlen(buf) - (strncmp(buf, tag, strlen(tag)) == 0 ? strlen(tag) : 0);
      if (strncmp(buf, tag, strlen(tag)) == 0 && w->naddr < 4 && alen < sizeof(w->addr[0])) {
        memcpy(w->addr[w->naddr], buf + strlen(tag), alen + 1);
        w->naddr++;
      }
      len -= (size_t)(nl + 1 - buf);
      memmove(buf, nl + 1, len + 1);
    }
  }
}

/* dh_start_args with one extra flag (may be NULL). */
static inline void dh_start(dh_worker_t *w, const char *const *listen, const char *flag) {
  const char *extra[] = {flag, NULL};
  dh_start_args(w, listen, extra);
}

/* SIGTERM, then the exit status, which must be a clean 0. */
static inline void dh_stop(dh_worker_t *w) {
  kill(w->pid, SIGTERM);
  int status = 0;
  cr_assert_eq(waitpid(w->pid, &status, 0), w->pid);
  close(w->out_fd);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the worker did not shut down cleanly (status %d)",
            status);
}

static inline void dh_kill(dh_worker_t *w) {
  kill(w->pid, SIGKILL);
  int status = 0;
  waitpid(w->pid, &status, 0);
  close(w->out_fd);
}

/* ---- caller-side helpers ------------------------------------------------------ */

static uvw_var_t *dh_request_id, *dh_tenant, *dh_counter, *dh_stub_only, *dh_opaque;

static inline void dh_declare(void) {
  cr_assert_eq(uvw_var_declare("t", "request_id", NULL, &dh_request_id), 0);
  cr_assert_eq(uvw_var_declare("t", "tenant", NULL, &dh_tenant), 0);
  cr_assert_eq(uvw_var_declare("t", "counter", NULL, &dh_counter), 0);
  cr_assert_eq(uvw_var_declare("t", "stub_only", NULL, &dh_stub_only), 0);
  cr_assert_eq(uvw_var_declare("t", "opaque", NULL, &dh_opaque), 0);
}

static inline void dh_set_str(uvw_var_t *var, const char *s) {
  uvw_value_t *v = uvw_value_cstring(s);
  cr_assert_eq(uvw_set(var, v, NULL), 0, "set: %s", uvw_error_message(uvw_last_error()));
  uvw_value_unref(v);
}

/* The string bound to var in the current context, "-" when unbound. */
static inline const char *dh_str(uvw_var_t *var) {
  uvw_value_t *v = NULL;
  cr_assert_eq(uvw_get_or(var, NULL, &v), 0, "get: %s", uvw_error_message(uvw_last_error()));
  if (v == NULL) return "-";
  cr_assert_eq(uvw_value_kind(v), UVW_VALUE_STRING);
  return uvw_value_as_string(v);
}

/* The int bound to var, -1 when unbound. */
static inline long dh_int(uvw_var_t *var) {
  uvw_value_t *v = NULL;
  cr_assert_eq(uvw_get_or(var, NULL, &v), 0);
  return v ? (long)uvw_value_as_int(v) : -1;
}

static inline void dh_chain_id(char out[33]) {
  out[0] = '\0';
  uvw_context_chain_id(uvw_context_current(), out);
}

static inline void dh_watchdog_fired(uv_timer_t *t) {
  (void)t;
  cr_assert_fail("watchdog: an expected reply never came");
}

/* Run the loop until *flag reaches want (or fail after ms). */
static inline void dh_run_until(uv_loop_t *loop, const int *flag, int want, uint64_t ms) {
  uv_timer_t dog;
  uv_timer_init(loop, &dog);
  uv_timer_start(&dog, dh_watchdog_fired, ms, 0);
  while (*flag < want) uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&dog, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

static inline void dh_conn_closed(void *arg) { ++*(int *)arg; }

/* Close the connection, run the loop dry and close it through uvwool. */
static inline void dh_finish(uv_loop_t *loop, uvw_conn_t *conn) {
  int closed = 0;
  if (conn) uvw_conn_close(conn, dh_conn_closed, &closed);
  uv_run(loop, UV_RUN_DEFAULT);
  if (conn) cr_assert_eq(closed, 1);
  cr_assert_eq(uvw_loop_close(loop), 0, "loop still has open handles");
}

/* A reply recorded by dh_record. */
typedef struct dh_reply_s {
  int calls;
  int status, done;
  char value[256];     /* string results */
  long ivalue;         /* int results */
  char error_type[64]; /* the error's kind name, or its wire_type */
  char error_msg[256];
  uvw_error_t *error;
  /* what the callback read in its own context after apply-back */
  char request_id[128], tenant[128], opaque[128];
  long counter;
  char chain[33];
} dh_reply_t;

static inline void dh_record(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg) {
  dh_reply_t *out = arg;
  (void)d;
  out->calls++;
  out->status = r->status;
  out->done = r->done;
  out->value[0] = '\0';
  out->ivalue = 0;
  if (r->status == 0 && r->value) {
    if (uvw_value_kind(r->value) == UVW_VALUE_STRING)
      snprintf(out->value, sizeof(out->value), "%s", uvw_value_as_string(r->value));
    else if (uvw_value_kind(r->value) == UVW_VALUE_INT)
      out->ivalue = (long)uvw_value_as_int(r->value);
  }
  uvw_error_unref(out->error);
  out->error = NULL;
  if (r->status != 0) {
    cr_assert_not_null(r->error, "a failed reply without an error");
    out->error = uvw_error_ref(r->error);
    const char *wt = uvw_error_field(r->error, "wire_type");
    snprintf(out->error_type, sizeof(out->error_type), "%s",
             wt ? wt : uvw_error_kind_name(uvw_error_kind(r->error)));
    snprintf(out->error_msg, sizeof(out->error_msg), "%s", uvw_error_message(r->error));
  }
  snprintf(out->request_id, sizeof(out->request_id), "%s", dh_str(dh_request_id));
  snprintf(out->tenant, sizeof(out->tenant), "%s", dh_str(dh_tenant));
  out->counter = dh_int(dh_counter);
  uvw_value_t *o = NULL;
  uvw_get_or(dh_opaque, NULL, &o);
  snprintf(out->opaque, sizeof(out->opaque), "%s",
           o == NULL ? "-" : uvw_value_kind(o) == UVW_VALUE_STRING ? uvw_value_as_string(o) : "<other>");
  dh_chain_id(out->chain);
}

static inline void dh_reply_clear(dh_reply_t *r) {
  uvw_error_unref(r->error);
  memset(r, 0, sizeof(*r));
}

/* ---- one worker, one loop, one connection per test ------------------------------ */

static uv_loop_t loop;
static dh_worker_t worker;
static uvw_conn_t *conn;

/* Start a worker on a fresh unix socket ("pipe") or an ephemeral loopback
 * port ("tcp"), with an extra flag (may be NULL), and connect to it. */
static inline void dh_open(const char *kind, const char *flag) {
  char addr[200];
  if (strcmp(kind, "tcp") == 0)
    snprintf(addr, sizeof(addr), "tcp:127.0.0.1:0");
  else
    dh_pipe_address(addr, sizeof(addr));
  const char *listen[] = {addr, NULL};
  dh_start(&worker, listen, flag);
  dh_declare();
  uv_loop_init(&loop);
  cr_assert_eq(uvw_conn_open(&loop, worker.addr[0], &conn), 0);
}

/* Close the connection and the loop, stop the worker (cleanly). */
static inline void dh_close(void) {
  dh_finish(&loop, conn);
  dh_stop(&worker);
}

/* A fresh context, entered, with request_id bound (NULL: left unarmed). */
static inline uvw_context_t *dh_enter(const char *request_id) {
  uvw_context_t *ctx = uvw_context_new();
  cr_assert_eq(uvw_context_enter(ctx), 0);
  if (request_id) dh_set_str(dh_request_id, request_id);
  return ctx;
}

static inline void dh_leave(uvw_context_t *ctx) {
  cr_assert_eq(uvw_context_exit(ctx), 0);
  uvw_context_unref(ctx);
}

/* ---- a raw client (blocking socket), to play a hostile peer or read the
 * exact frames a worker sends ---------------------------------------------------- */

static inline int dh_raw_connect(const char *address) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  cr_assert_lt(strlen(address + 5), sizeof(sa.sun_path));
  strcpy(sa.sun_path, address + 5);
  cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  return fd;
}

static inline void dh_raw_send(int fd, const void *data, size_t len) {
  cr_assert_eq(write(fd, data, len), (ssize_t)len);
}

static inline void dh_raw_send_frame(int fd, const uvw_frame_t *f) {
  void *buf;
  size_t len;
  cr_assert_eq(uvw_frame_encode(f, &buf, &len), 0);
  uint8_t h[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
  dh_raw_send(fd, h, 4);
  dh_raw_send(fd, buf, len);
  uvw_free(buf);
}

/* Read exactly len bytes: 1, or 0 when the peer hung up first. */
static inline int dh_raw_read(int fd, void *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    struct pollfd p = {fd, POLLIN, 0};
    cr_assert_gt(poll(&p, 1, 30000), 0, "the worker did not answer");
    ssize_t n = read(fd, (char *)buf + got, len - got);
    if (n <= 0) return 0;
    got += (size_t)n;
  }
  return 1;
}

/* The next frame on fd: a Response (a worker's), or with `request` set a
 * Request (a caller's, when the test plays the worker). */
static inline uvw_frame_t *dh_raw_recv(int fd, int request) {
  uint8_t h[4];
  cr_assert(dh_raw_read(fd, h, 4), "connection closed instead of a frame");
  size_t len = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
  void *buf = malloc(len ? len : 1);
  cr_assert(dh_raw_read(fd, buf, len));
  uvw_frame_t *f;
  cr_assert_eq(request ? uvw_frame_decode_request(buf, len, &f) : uvw_frame_decode_response(buf, len, &f), 0);
  free(buf);
  return f;
}

static inline uvw_frame_t *dh_raw_recv_frame(int fd) { return dh_raw_recv(fd, 0); }

#endif
