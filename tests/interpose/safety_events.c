/* libuv's own semantics, as a deterministic event log on stdout: run with
 * and without the preload object, the two logs must be identical
 * (run_safety.sh diffs them and checks a few facts in them). Plain libuv
 * only, no uvwool at all: also the "program that never calls uvwool" case.
 * Nothing nondeterministic is printed (no fds, addresses or times). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#define LOG(...) (printf(__VA_ARGS__), putchar('\n'))

static const char *err(int rc) { return rc == 0 ? "0" : uv_err_name(rc); }

/* ---- re-arming a timer from its own callback; stopping inside it ---- */
static int rearms;
static void on_rearm(uv_timer_t *t) {
  rearms++;
  LOG("rearm callback %d, active %d", rearms, uv_is_active((uv_handle_t *)t));
  if (rearms < 3) {
    LOG("rearm restart: %s", err(uv_timer_start(t, on_rearm, 0, 0)));
  } else {
    int rc = uv_timer_stop(t);
    LOG("rearm stop inside callback: %s, active %d", err(rc), uv_is_active((uv_handle_t *)t));
  }
}
static int idles;
static void on_idle(uv_idle_t *h) {
  if (++idles < 2) return;
  int rc = uv_idle_stop(h);
  LOG("idle stops itself on call 2: %s, active %d", err(rc), uv_is_active((uv_handle_t *)h));
}

/* ---- uv_walk and close callbacks ---- */
static void on_walk(uv_handle_t *h, void *arg) {
  (*(int *)arg)++;
  LOG("walk: %s%s%s", uv_handle_type_name(uv_handle_get_type(h)), uv_is_active(h) ? " active" : "",
      uv_is_closing(h) ? " closing" : "");
}
static void on_close_named(uv_handle_t *h) { LOG("close callback: %s", (const char *)h->data); }

/* ---- closing a stream with a pending write ---- */
static void on_pending_write(uv_write_t *req, int status) {
  LOG("pending write callback: status %s, req->data %s", err(status), (const char *)req->data);
}

/* ---- fs, process: chained (stat, then the missing file, then the
 * processes), because pool threads and a child finish in any order and the
 * log must be deterministic ---- */
static uv_fs_t missing;
static uv_process_t child, nochild;
static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  LOG("process exit: status %ld signal %d", (long)status, sig);
  uv_close((uv_handle_t *)p, on_close_named);
}
static void on_missing(uv_fs_t *req) {
  LOG("fs_open missing file callback: %s", err((int)req->result));
  uv_fs_req_cleanup(req);
  child.data = "process";
  char *args[] = {"/bin/sh", "-c", "exit 3", NULL};
  uv_process_options_t opts = {.file = args[0], .args = args, .exit_cb = on_exit_cb};
  LOG("spawn: %s", err(uv_spawn(req->loop, &child, &opts)));
  char *bad[] = {"/nonexistent/uvwool", NULL};
  uv_process_options_t bad_opts = {.file = bad[0], .args = bad, .exit_cb = on_exit_cb};
  LOG("spawn missing binary: %s", err(uv_spawn(req->loop, &nochild, &bad_opts)));
  uv_close((uv_handle_t *)&nochild, NULL); /* libuv's rule: close even a failed spawn */
}
static void on_stat(uv_fs_t *req) {
  LOG("fs_stat callback: result %s, data %s", err((int)req->result), (const char *)req->data);
  uv_fs_req_cleanup(req);
  LOG("fs_open missing: %s", err(uv_fs_open(req->loop, &missing, "/nonexistent/uvwool", UV_FS_O_RDONLY, 0, on_missing)));
}
static void on_second_timer(uv_timer_t *t) {
  LOG("second loop timer, loop is second: %d", t->loop != uv_default_loop());
  uv_close((uv_handle_t *)t, on_close_named);
}

int main(void) {
  /* Whether uv_timer_start is interposed, to stderr (not part of the log). */
  Dl_info info;
  void *addr;
  int (*fn)(uv_timer_t *, uv_timer_cb, uint64_t, uint64_t) = uv_timer_start;
  memcpy(&addr, &fn, sizeof addr);
  if (dladdr(addr, &info) && info.dli_fname) fprintf(stderr, "uv_timer_start from %s\n", info.dli_fname);

  uv_loop_t *loop = uv_default_loop();
  setvbuf(stdout, NULL, _IOLBF, 0);

  uv_timer_t rearm;
  uv_timer_init(loop, &rearm);
  rearm.data = "rearm";
  LOG("timer_start NULL callback: %s", err(uv_timer_start(&rearm, NULL, 0, 0)));
  LOG("timer_start: %s", err(uv_timer_start(&rearm, on_rearm, 0, 0)));
  uv_idle_t idle;
  uv_idle_init(loop, &idle);
  idle.data = "idle";
  uv_idle_start(&idle, on_idle);
  LOG("loop alive before run: %d", uv_loop_alive(loop));
  LOG("run: %d", uv_run(loop, UV_RUN_DEFAULT));
  LOG("rearm timer data intact: %s", (const char *)rearm.data);

  int n = 0;
  uv_walk(loop, on_walk, &n);
  LOG("walk saw %d handles", n);

  /* loop close with live handles */
  LOG("loop close with open handles: %s", err(uv_loop_close(loop)));

  /* a stream closed with a write pending on it */
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 2;
  uv_pipe_t writer, reader;
  uv_pipe_init(loop, &writer, 0);
  uv_pipe_open(&writer, sv[0]);
  uv_pipe_init(loop, &reader, 0);
  uv_pipe_open(&reader, sv[1]);
  writer.data = "writer";
  reader.data = "reader";
  size_t big = 8 << 20; /* more than the socket buffers: stays pending */
  char *payload = calloc(1, big);
  uv_buf_t b = uv_buf_init(payload, (unsigned)big);
  uv_write_t wreq;
  wreq.data = "wreq";
  LOG("write: %s", err(uv_write(&wreq, (uv_stream_t *)&writer, &b, 1, on_pending_write)));

  /* close callbacks: libuv runs them last-closed first */
  uv_close((uv_handle_t *)&writer, on_close_named);
  uv_close((uv_handle_t *)&rearm, on_close_named);
  uv_close((uv_handle_t *)&idle, on_close_named);
  uv_close((uv_handle_t *)&reader, on_close_named);
  LOG("timer_start on a closing handle: %s", err(uv_timer_start(&rearm, on_rearm, 0, 0)));
  n = 0;
  uv_walk(loop, on_walk, &n);
  LOG("walk saw %d handles", n);
  LOG("run: %d", uv_run(loop, UV_RUN_DEFAULT));
  free(payload);

  /* requests: fs, a missing file (async and sync), processes (chained from
   * the stat's callback) */
  uv_fs_t st, sync_req;
  st.data = "stat";
  LOG("fs_stat: %s", err(uv_fs_stat(loop, &st, "/", on_stat)));
  LOG("sync fs_open missing: %s", err(uv_fs_open(loop, &sync_req, "/nonexistent/uvwool", UV_FS_O_RDONLY, 0, NULL)));
  uv_fs_req_cleanup(&sync_req);
  LOG("loop close with a pending request: %s", err(uv_loop_close(loop)));
  LOG("run: %d", uv_run(loop, UV_RUN_DEFAULT));

  /* a second loop, with its own handles */
  uv_loop_t second;
  uv_loop_init(&second);
  uv_timer_t t2;
  uv_timer_init(&second, &t2);
  t2.data = "second-timer";
  uv_timer_start(&t2, on_second_timer, 0, 0);
  LOG("default loop alive while second has a timer: %d", uv_loop_alive(loop));
  LOG("second loop close with a timer: %s", err(uv_loop_close(&second)));
  LOG("second run: %d", uv_run(&second, UV_RUN_DEFAULT));
  LOG("second loop close: %s", err(uv_loop_close(&second)));

  n = 0;
  uv_walk(loop, on_walk, &n);
  LOG("walk saw %d handles", n);
  LOG("loop close at the end: %s", err(uv_loop_close(loop)));
  return 0;
}
