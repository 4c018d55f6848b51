/* A program written against plain libuv: it includes uv.h and calls no
 * uvwool function but declaring, setting and reading one variable. Built
 * with uvwool_transparent() (link-time mode) or run with LD_PRELOAD=
 * libuvwool-preload.so, its callbacks must see the value set when they were
 * registered, not the value main set afterwards.
 *
 * usage: plain_propagation propagated|plain
 *   propagated: every callback sees its registration's value;
 *   plain:      no transparent mode: callbacks see main's later value (the
 *               control proving the checks can fail). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "uvwool/context.h"
#include "uvwool/errors.h"

#define LATER "later" /* what main sets right after every registration */

static uvw_var_t *var;
static int propagated, checks, failures;

static void set_value(const char *s) {
  uvw_value_t *v = uvw_value_cstring(s);
  if (v == NULL || uvw_set(var, v, NULL) != 0) failures++;
  uvw_value_unref(v);
}

static const char *current(void) {
  uvw_value_t *out;
  return uvw_get(var, &out) == 0 ? uvw_value_as_string(out) : "(unset)";
}

/* Check what a callback sees: its registration's value when propagated,
 * `otherwise` (main's later value, or nothing on a pool thread) if not. */
static void expect_seen(const char *where, const char *seen, const char *registered, const char *otherwise) {
  const char *want = propagated ? registered : otherwise;
  checks++;
  if (strcmp(seen, want) != 0) {
    failures++;
    printf("FAIL %s: saw \"%s\", expected \"%s\"\n", where, seen, want);
  } else {
    printf("ok   %s: \"%s\"\n", where, seen);
  }
}
static void expect(const char *where, const char *registered) { expect_seen(where, current(), registered, LATER); }

/* ---- timers: one-shot, repeating (every repeat), close callback ---- */
static uv_timer_t once, repeating;
static int repeats;
/* Registered inside the timer's callback: captures the timer's context. */
static void on_close(uv_handle_t *h) { expect("close (registered in the timer's callback)", h == (uv_handle_t *)&once ? "timer" : "(wrong handle)"); }
static void on_once(uv_timer_t *t) {
  expect("timer", "timer");
  uv_close((uv_handle_t *)t, on_close);
}
static void on_repeat(uv_timer_t *t) {
  expect("timer repeat", "repeat");
  if (++repeats == 3) uv_close((uv_handle_t *)t, NULL);
}

/* ---- fs: a stat, and an open whose callback chains a close ---- */
static uv_fs_t stat_req, open_req, close_req;
static void on_stat(uv_fs_t *req) {
  expect("fs_stat", "fs-stat");
  uv_fs_req_cleanup(req);
}
static void on_fs_close(uv_fs_t *req) {
  expect("fs_close (registered in fs_open's callback)", "fs-open");
  uv_fs_req_cleanup(req);
}
static void on_open(uv_fs_t *req) {
  expect("fs_open", "fs-open");
  uv_file fd = (uv_file)req->result;
  uv_fs_req_cleanup(req);
  if (fd >= 0) uv_fs_close(req->loop, &close_req, fd, on_fs_close);
}

/* ---- streams: a write and a read over a pipe pair ---- */
static uv_pipe_t ends[2];
static uv_write_t write_req;
static char rbuf[64];
static void on_alloc(uv_handle_t *h, size_t n, uv_buf_t *buf) {
  (void)h, (void)n;
  *buf = uv_buf_init(rbuf, sizeof rbuf);
}
static void on_write(uv_write_t *req, int status) {
  (void)req;
  expect("write", status == 0 ? "write" : "(write failed)");
}
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  if (n <= 0) return;
  expect("read", "read");
  uv_read_stop(s);
  uv_close((uv_handle_t *)&ends[0], NULL);
  uv_close((uv_handle_t *)&ends[1], NULL);
}

/* ---- work: the work callback on a pool thread, the after callback ---- */
static uv_work_t work_req;
static char seen_in_work[32];
/* The work callback runs in the context captured at submission, which is
 * main's armed chain: reading it from a pool thread is a ChainContention
 * (uvwool's guard, docs/loop.md), which proves it is that context. Without
 * propagation the pool thread has no context: the variable is unbound. */
static void on_work(uv_work_t *req) {
  (void)req;
  uvw_value_t *out;
  int rc = uvw_get(var, &out);
  snprintf(seen_in_work, sizeof seen_in_work, "%s",
           rc == 0 ? uvw_value_as_string(out) : rc == UVW_ECONTENTION ? "(contention)" : "(unset)");
}
static void on_after_work(uv_work_t *req, int status) {
  (void)req, (void)status;
  expect_seen("queue_work (work_cb, pool thread)", seen_in_work, "(contention)", "(unset)");
  expect("queue_work (after_work_cb)", "work");
}

/* ---- signals and process exit ---- */
static uv_signal_t sig;
static void on_signal(uv_signal_t *h, int signum) {
  expect("signal", signum == SIGUSR1 ? "signal" : "(wrong signal)");
  uv_close((uv_handle_t *)h, NULL);
}
static uv_process_t child;
static void on_exit_cb(uv_process_t *p, int64_t status, int term_signal) {
  (void)term_signal;
  expect("process exit", status == 7 ? "exit" : "(wrong status)");
  uv_close((uv_handle_t *)p, NULL);
}

/* ---- a second loop ---- */
static uv_timer_t on_second;
static void on_second_loop(uv_timer_t *t) {
  expect("timer on a second loop", "loop2");
  uv_close((uv_handle_t *)t, NULL);
}

int main(int argc, char **argv) {
  if (argc != 2 || (strcmp(argv[1], "propagated") != 0 && strcmp(argv[1], "plain") != 0)) {
    fprintf(stderr, "usage: %s propagated|plain\n", argv[0]);
    return 2;
  }
  propagated = strcmp(argv[1], "propagated") == 0;
  if (uvw_var_declare("interpose", "request", NULL, &var) != 0) return 2;
  uv_loop_t *loop = uv_default_loop();

  set_value("timer");
  uv_timer_init(loop, &once);
  uv_timer_start(&once, on_once, 1, 0);
  set_value("repeat");
  uv_timer_init(loop, &repeating);
  uv_timer_start(&repeating, on_repeat, 1, 1);

  set_value("fs-stat");
  uv_fs_stat(loop, &stat_req, "/", on_stat);
  set_value("fs-open");
  uv_fs_open(loop, &open_req, "/dev/null", UV_FS_O_RDONLY, 0, on_open);

  int fds[2];
  if (uv_pipe(fds, 0, 0) != 0) return 2;
  for (int i = 0; i < 2; i++) {
    uv_pipe_init(loop, &ends[i], 0);
    uv_pipe_open(&ends[i], fds[i]);
  }
  set_value("read");
  uv_read_start((uv_stream_t *)&ends[0], on_alloc, on_read);
  set_value("write");
  uv_buf_t b = uv_buf_init("x", 1);
  uv_write(&write_req, (uv_stream_t *)&ends[1], &b, 1, on_write);

  set_value("work");
  uv_queue_work(loop, &work_req, on_work, on_after_work);

  set_value("signal");
  uv_signal_init(loop, &sig);
  uv_signal_start(&sig, on_signal, SIGUSR1);

  set_value("exit");
  char *args[] = {"/bin/sh", "-c", "exit 7", NULL};
  uv_process_options_t opts = {.file = args[0], .args = args, .exit_cb = on_exit_cb};
  int rc = uv_spawn(loop, &child, &opts);

  set_value(LATER);
  uv_kill(getpid(), SIGUSR1);
  uv_run(loop, UV_RUN_DEFAULT);

  uv_loop_t second;
  uv_loop_init(&second);
  set_value("loop2");
  uv_timer_init(&second, &on_second);
  uv_timer_start(&on_second, on_second_loop, 1, 0);
  set_value(LATER);
  uv_run(&second, UV_RUN_DEFAULT);

  /* Every handle is closed: both loops must close cleanly. */
  int close2 = uv_loop_close(&second), close1 = uv_loop_close(loop);
  int expected_checks = 15;
  printf("spawn %d, loop closes %d %d, %d checks (expected %d), %d failures\n", rc, close2, close1, checks,
         expected_checks, failures);
  return rc == 0 && close1 == 0 && close2 == 0 && checks == expected_checks && failures == 0 ? 0 : 1;
}
