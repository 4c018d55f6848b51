/* The libuv plugin's cost: the same callback workloads on raw libuv and
 * through uvwool (with one bound variable read in every callback), run
 * alternately in one process, printed as ratios; plus the cost of a capture
 * and of enter/exit, and the allocations per callback.
 *
 * Workloads: a timer chain (each callback restarts its timer: one new
 * registration per callback), idle + check, a stream ping-pong over a
 * socketpair, a batch of fs stat requests and a batch of work-queue jobs
 * (the last two go through the thread pool, so fewer iterations). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <uv.h>

#include "uvwool.h"
#include "uvwool/loop.h"

static uvw_var_t *var;
static int wool; /* 0: raw libuv, 1: through uvwool */
static long remaining;
static volatile long sink;

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static inline void touch(void) {
  if (wool) {
    uvw_value_t *out;
    if (uvw_get(var, &out) != 0) abort();
    sink += uvw_value_as_int(out);
  }
}

/* ---- timer chain ---------------------------------------------------------------- */
static void timer_cb(uv_timer_t *t) {
  touch();
  if (--remaining > 0) {
    if (wool)
      uvw_timer_start(t, timer_cb, 0, 0);
    else
      uv_timer_start(t, timer_cb, 0, 0);
  }
}
static void run_timer(uv_loop_t *loop) {
  uv_timer_t t;
  uv_timer_init(loop, &t);
  if (wool)
    uvw_timer_start(&t, timer_cb, 0, 0);
  else
    uv_timer_start(&t, timer_cb, 0, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  if (wool)
    uvw_close((uv_handle_t *)&t, NULL);
  else
    uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
}

/* ---- idle + check ------------------------------------------------------------------ */
static uv_idle_t idle;
static uv_check_t check;
static void idle_cb(uv_idle_t *h) {
  (void)h;
  touch();
}
static void check_cb(uv_check_t *h) {
  touch();
  remaining -= 2; /* two callbacks per iteration */
  if (remaining <= 0) {
    if (wool) {
      uvw_idle_stop(&idle);
      uvw_check_stop(h);
    } else {
      uv_idle_stop(&idle);
      uv_check_stop(h);
    }
  }
}
static void run_idle(uv_loop_t *loop) {
  uv_idle_init(loop, &idle);
  uv_check_init(loop, &check);
  if (wool) {
    uvw_idle_start(&idle, idle_cb);
    uvw_check_start(&check, check_cb);
  } else {
    uv_idle_start(&idle, idle_cb);
    uv_check_start(&check, check_cb);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  if (wool) {
    uvw_close((uv_handle_t *)&idle, NULL);
    uvw_close((uv_handle_t *)&check, NULL);
  } else {
    uv_close((uv_handle_t *)&idle, NULL);
    uv_close((uv_handle_t *)&check, NULL);
  }
  uv_run(loop, UV_RUN_DEFAULT);
}

/* ---- stream ping-pong ---------------------------------------------------------------- */
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
  if (wool)
    uvw_write(&wreq[side], (uv_stream_t *)&ends[side], &b, 1, write_cb);
  else
    uv_write(&wreq[side], (uv_stream_t *)&ends[side], &b, 1, write_cb);
}
static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  if (n <= 0) return;
  touch();
  int side = s == (uv_stream_t *)&ends[1];
  if (--remaining > 0) {
    send_on(side); /* answer from this end */
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
    if (wool)
      uvw_read_start((uv_stream_t *)&ends[i], alloc_cb, read_cb);
    else
      uv_read_start((uv_stream_t *)&ends[i], alloc_cb, read_cb);
  }
  send_on(0);
  uv_run(loop, UV_RUN_DEFAULT);
  for (int i = 0; i < 2; i++) {
    if (wool)
      uvw_close((uv_handle_t *)&ends[i], NULL);
    else
      uv_close((uv_handle_t *)&ends[i], NULL);
  }
  uv_run(loop, UV_RUN_DEFAULT);
}

/* ---- fs stat batch and work queue: IN_FLIGHT requests kept busy -------------------- */
#define IN_FLIGHT 32
static uv_fs_t fs_reqs[IN_FLIGHT];
static uv_work_t work_reqs[IN_FLIGHT];
static long issued;
static void stat_cb(uv_fs_t *req);
static void issue_stat(uv_loop_t *loop, uv_fs_t *req) {
  issued++;
  if (wool)
    uvw_fs_stat(loop, req, "/", stat_cb);
  else
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
  if (wool)
    uvw_queue_work(loop, req, work_cb, after_cb);
  else
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

/* ---- allocation counting ------------------------------------------------------------ */
static atomic_long allocations;
static void *count_malloc(size_t n) {
  atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
  return malloc(n);
}
static void *count_realloc(void *p, size_t n) {
  atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
  return realloc(p, n);
}
static void *count_calloc(size_t c, size_t n) {
  atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
  return calloc(c, n);
}

typedef struct {
  const char *name;
  void (*run)(uv_loop_t *);
  long iterations;
  double goal; /* the fast path's goal: uvwool / raw at most this */
} workload_t;

/* The fast path's goals for the two costs measured apart: enter+exit in ns;
 * a capture at most the libuv registration's own cost in the same run. */
#define ENTER_EXIT_GOAL_NS 3.0

static const char *verdict(int pass) { return pass ? "PASS" : "MISS"; }

static double run_once(const workload_t *w, int with_wool, long *allocs) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  wool = with_wool;
  remaining = w->iterations;
  if (with_wool) { /* warm the loop's record pool and context cache */
    uvw_loop_attach(&loop);
  }
  long before = atomic_load(&allocations);
  double t0 = now_ns();
  w->run(&loop);
  double t = now_ns() - t0;
  *allocs = atomic_load(&allocations) - before;
  if (with_wool)
    uvw_loop_close(&loop);
  else
    uv_loop_close(&loop);
  return t / (double)w->iterations;
}

int main(int argc, char **argv) {
  double scale = argc > 1 ? atof(argv[1]) : 1.0;
  uvw_replace_allocator(count_malloc, count_realloc, count_calloc, free);
  uvw_value_t *v = uvw_value_int(1);
  uvw_var_declare("bench", "request", NULL, &var);
  uvw_set(var, v, NULL);
  uvw_value_unref(v);

  workload_t loads[] = {
      {"timer chain", run_timer, (long)(1000000 * scale), 2.0},
      {"idle+check", run_idle, (long)(1000000 * scale), 1.05},
      {"stream ping-pong", run_stream, (long)(200000 * scale), 1.03},
      {"fs stat batch", run_fs, (long)(100000 * scale), 1.03},
      {"work queue", run_work, (long)(100000 * scale), 1.03},
  };
  printf("uvwool loop benchmark: raw libuv vs uvwool (one bound variable read per callback)\n");
  printf("best of 3 alternating runs; ns per callback\n\n");
  printf("%-18s %10s %10s %10s %8s %14s %8s %s\n", "workload", "callbacks", "raw ns", "uvwool ns", "ratio",
         "allocs/callback", "goal", "result");
  for (size_t i = 0; i < sizeof loads / sizeof loads[0]; i++) {
    double best_raw = 1e18, best_wool = 1e18;
    long allocs = 0;
    for (int rep = 0; rep < 3; rep++) {
      long a;
      double r = run_once(&loads[i], 0, &a);
      double w = run_once(&loads[i], 1, &allocs);
      if (r < best_raw) best_raw = r;
      if (w < best_wool) best_wool = w;
    }
    double ratio = best_wool / best_raw;
    printf("%-18s %10ld %10.1f %10.1f %7.3fx %14.4f %7.2fx %s\n", loads[i].name, loads[i].iterations, best_raw,
           best_wool, ratio, (double)allocs / (double)loads[i].iterations, loads[i].goal,
           verdict(ratio <= loads[i].goal));
  }

  /* capture (a re-registration: capture + replace) and enter/exit */
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  long n = (long)(2000000 * scale);
  double best_raw = 1e18, best_wool = 1e18, best_enter = 1e18;
  for (int rep = 0; rep < 3; rep++) {
    double t0 = now_ns();
    for (long k = 0; k < n; k++) uv_timer_start(&t, timer_cb, 1000000, 0);
    double r = (now_ns() - t0) / (double)n;
    t0 = now_ns();
    for (long k = 0; k < n; k++) uvw_timer_start(&t, timer_cb, 1000000, 0);
    double w = (now_ns() - t0) / (double)n;
    uvw_context_t *ctx = uvw_context_copy_current();
    t0 = now_ns();
    for (long k = 0; k < n; k++) {
      uvw_context_enter(ctx);
      uvw_context_exit(ctx);
    }
    double e = (now_ns() - t0) / (double)n;
    uvw_context_unref(ctx);
    if (r < best_raw) best_raw = r;
    if (w < best_wool) best_wool = w;
    if (e < best_enter) best_enter = e;
  }
  uvw_timer_stop(&t);
  uvw_close((uv_handle_t *)&t, NULL);
  uvw_loop_close(&loop);
  double capture = best_wool - best_raw;
  printf("\ncapture at registration: uv_timer_start %.1f ns, uvw_timer_start %.1f ns -> capture costs %.1f ns "
         "(%.2fx the libuv registration; goal <= 1x) %s\n",
         best_raw, best_wool, capture, capture / best_raw, verdict(capture <= best_raw));
  printf("enter + exit around a callback: %.1f ns (goal <= %.0f ns) %s\n", best_enter, ENTER_EXIT_GOAL_NS,
         verdict(best_enter <= ENTER_EXIT_GOAL_NS));
  return sink == -1;
}
