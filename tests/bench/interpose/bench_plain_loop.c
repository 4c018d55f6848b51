/* bench_loop.c's callback workloads written against plain libuv only (one
 * variable read per callback, as there): timer chain, idle + check, stream
 * ping-pong, fs stat batch, work queue. The same source is timed three ways
 * by run.sh: raw libuv, link-time mode (uvwool_transparent) and preload mode
 * (LD_PRELOAD=libuvwool-preload.so). Prints "name ns_per_callback" lines:
 * best of `reps` runs of each workload. usage: bench_plain_loop [scale] */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <uv.h>

#include "uvwool/context.h"

static uvw_var_t *var;
static long remaining, issued;
static volatile long sink;

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}
static inline void touch(void) {
  uvw_value_t *out;
  if (uvw_get(var, &out) == 0) sink += uvw_value_as_int(out);
}

static void timer_cb(uv_timer_t *t) {
  touch();
  if (--remaining > 0) uv_timer_start(t, timer_cb, 0, 0);
}
static void run_timer(uv_loop_t *loop) {
  uv_timer_t t;
  uv_timer_init(loop, &t);
  uv_timer_start(&t, timer_cb, 0, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
}

static uv_idle_t idle;
static uv_check_t check;
static void idle_cb(uv_idle_t *h) {
  (void)h;
  touch();
}
static void check_cb(uv_check_t *h) {
  touch();
  remaining -= 2;
  if (remaining <= 0) {
    uv_idle_stop(&idle);
    uv_check_stop(h);
  }
}
static void run_idle(uv_loop_t *loop) {
  uv_idle_init(loop, &idle);
  uv_check_init(loop, &check);
  uv_idle_start(&idle, idle_cb);
  uv_check_start(&check, check_cb);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&idle, NULL);
  uv_close((uv_handle_t *)&check, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
}

static uv_pipe_t ends[2];
static char byte = 'x', rbuf[2][64];
static uv_write_t wreq[2];
static void alloc_cb(uv_handle_t *h, size_t n, uv_buf_t *buf) {
  (void)n;
  *buf = uv_buf_init(rbuf[h == (uv_handle_t *)&ends[1]], sizeof rbuf[0]);
}
static void write_cb(uv_write_t *req, int status) {
  (void)req;
  if (status) abort();
  touch();
}
static void send_on(int side) {
  uv_buf_t b = uv_buf_init(&byte, 1);
  uv_write(&wreq[side], (uv_stream_t *)&ends[side], &b, 1, write_cb);
}
static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  if (n <= 0) return;
  touch();
  if (--remaining > 0) {
    send_on(s == (uv_stream_t *)&ends[1]);
  } else {
    uv_read_stop((uv_stream_t *)&ends[0]);
    uv_read_stop((uv_stream_t *)&ends[1]);
  }
}
static void run_stream(uv_loop_t *loop) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) abort();
  for (int i = 0; i < 2; i++) {
    uv_pipe_init(loop, &ends[i], 0);
    uv_pipe_open(&ends[i], sv[i]);
    uv_read_start((uv_stream_t *)&ends[i], alloc_cb, read_cb);
  }
  send_on(0);
  uv_run(loop, UV_RUN_DEFAULT);
  for (int i = 0; i < 2; i++) uv_close((uv_handle_t *)&ends[i], NULL);
  uv_run(loop, UV_RUN_DEFAULT);
}

#define IN_FLIGHT 32
static uv_fs_t fs_reqs[IN_FLIGHT];
static uv_work_t work_reqs[IN_FLIGHT];
static void stat_cb(uv_fs_t *req);
static void issue_stat(uv_loop_t *loop, uv_fs_t *req) {
  issued++;
  uv_fs_stat(loop, req, "/", stat_cb);
}
static void stat_cb(uv_fs_t *req) {
  touch();
  uv_fs_req_cleanup(req);
  if (issued < remaining) issue_stat(req->loop, req);
}
static void run_fs(uv_loop_t *loop) {
  issued = 0;
  for (int i = 0; i < IN_FLIGHT; i++) issue_stat(loop, &fs_reqs[i]);
  uv_run(loop, UV_RUN_DEFAULT);
}
static void work_cb(uv_work_t *req) { (void)req; }
static void after_cb(uv_work_t *req, int status);
static void issue_work(uv_loop_t *loop, uv_work_t *req) {
  issued++;
  uv_queue_work(loop, req, work_cb, after_cb);
}
static void after_cb(uv_work_t *req, int status) {
  (void)status;
  touch();
  if (issued < remaining) issue_work(req->loop, req);
}
static void run_work(uv_loop_t *loop) {
  issued = 0;
  for (int i = 0; i < IN_FLIGHT; i++) issue_work(loop, &work_reqs[i]);
  uv_run(loop, UV_RUN_DEFAULT);
}

int main(int argc, char **argv) {
  double scale = argc > 1 ? atof(argv[1]) : 1.0;
  int reps = argc > 2 ? atoi(argv[2]) : 3;
  uvw_value_t *v = uvw_value_int(1);
  uvw_var_declare("bench", "request", NULL, &var);
  uvw_set(var, v, NULL);
  uvw_value_unref(v);
  struct {
    const char *name;
    void (*run)(uv_loop_t *);
    long iterations;
  } loads[] = {
      {"timer-chain", run_timer, (long)(1000000 * scale)},  {"idle+check", run_idle, (long)(1000000 * scale)},
      {"stream-ping-pong", run_stream, (long)(200000 * scale)}, {"fs-stat-batch", run_fs, (long)(100000 * scale)},
      {"work-queue", run_work, (long)(100000 * scale)},
  };
  for (size_t i = 0; i < sizeof loads / sizeof loads[0]; i++) {
    double best = 1e18;
    for (int rep = 0; rep < reps; rep++) {
      uv_loop_t loop;
      uv_loop_init(&loop);
      remaining = loads[i].iterations;
      double t0 = now_ns();
      loads[i].run(&loop);
      double t = (now_ns() - t0) / (double)loads[i].iterations;
      uv_loop_close(&loop);
      if (t < best) best = t;
    }
    printf("%s %.1f\n", loads[i].name, best);
  }
  return sink == -1;
}
