/* Cross-process dispatch: round trips per second over a unix socket to one
 * real uvwool-worker process, with 0, 1 and 8 context variables bound in
 * the caller, so the cost of the context (the manifest that travels both
 * ways and its merge into the reply's capture) shows next to the bare RPC,
 * with full manifests and with delta manifests (two connections to the
 * same worker, one with uvw_conn_set_delta_manifests(conn, 0)), for a
 * context that does not change between dispatches and one whose 8
 * variables all change before every dispatch.
 *
 *   cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DUVWOOL_BUILD_BENCH=ON
 *   cmake --build build/bench --target bench_dispatch_run     # or:
 *   build/bench/tests/bench/bench_dispatch [SCALE]
 *
 * SCALE (default 1) multiplies the round-trip counts.
 *
 * The worker serves tests/dispatch/routines.c: "noop" (one-shot, returns
 * nil) and "noop_stream" (every NEXT yields nil). Configurations:
 *   - one-shot, sequential: each uvw_conn_dispatch("noop") is issued from the
 *     previous reply's callback;
 *   - streaming, sequential: one uvw_conn_dispatch_stream("noop_stream"), then
 *     uvw_dispatch_next steps, each issued from the previous step's callback
 *     (the timed span includes the open's Task and Ack, once per N steps);
 *   - one-shot, pipelined: PIPELINE dispatches kept in flight, each reply's
 *     callback issuing the next one.
 * With 0 variables the caller's context is unarmed: no manifest travels,
 * which is the "without context" baseline. 1 and 8 variables are 16-byte
 * strings in namespace "bench" (stubs on the worker, which never declares
 * them: they still travel there and back). Every callback checks the reply
 * (status 0) and that the context it runs in still holds exactly the bound
 * variables (and is still unarmed at 0), so the baseline cannot silently
 * turn into a context run.
 *
 * Configurations alternate within each round; best of ROUNDS rounds. The
 * ratio is the throughput against the 0-variable run of the same kind.
 *
 * CPU pinning: by default the benchmark pins itself, and so the worker it
 * forks, to the one CPU it starts on. Unpinned, a sequential ping-pong
 * between two processes is dominated by cross-CPU wake-up latency, which
 * is bimodal and changes from run to run (on a 2-core machine the same
 * configuration measured 17 us and 54 us per round trip in one run), so
 * the context's cost drowns. Pinned, a round trip costs the CPU work of
 * both sides plus two context switches: stable, and the context's share of
 * it is what the ratio shows. UVWOOL_BENCH_PIN=0 runs unpinned. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "uvwool.h"
#include "uvwool/dispatch.h"
#include "uvwool/loop.h"

#ifndef UVWOOL_BENCH_BUILD_TYPE
#define UVWOOL_BENCH_BUILD_TYPE "unknown"
#endif

#define ROUNDS 3
#define PIPELINE 64
#define MAX_VARS 8
#define SEQUENTIAL_ROUND_TRIPS 20000
#define PIPELINED_ROUND_TRIPS 50000
#define WATCHDOG_MS 10000
/* Delta manifests' goals: an unchanged context costs under 5% of the
 * throughput, one whose 8 variables all change under 15%. */
#define DELTA_UNCHANGED_TARGET 0.95
#define DELTA_CHANGING_TARGET 0.85

/* ---- the worker process ------------------------------------------------------------ */

static pid_t worker_pid = -1;
static int worker_out = -1;
static char sock_path[128], address[200];

static void stop_worker_quietly(void) {
  if (worker_pid > 0) {
    kill(worker_pid, SIGTERM);
    waitpid(worker_pid, NULL, 0);
    worker_pid = -1;
  }
  if (sock_path[0]) remove(sock_path);
}

/* Abort the benchmark: message, worker stopped, exit 1. */
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("bench_dispatch: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  stop_worker_quietly();
  exit(1);
}

/* Start uvwool-worker listening on a fresh unix socket and wait for its
 * "uvwool-worker: listening on ADDRESS" line. */
static void start_worker(void) {
  snprintf(sock_path, sizeof(sock_path), "/tmp/uvwool-bench-%d.sock", (int)getpid());
  remove(sock_path); /* the worker does not remove a stale socket file */
  char listen[160];
  snprintf(listen, sizeof(listen), "pipe:%s", sock_path);
  const char *argv[] = {UVWOOL_WORKER_PATH, "--routines", UVWOOL_TEST_ROUTINES, "--listen", listen, NULL};
  int fds[2];
  if (pipe(fds) != 0) die("pipe: %s", strerror(errno));
  pid_t parent = getpid();
  worker_pid = fork();
  if (worker_pid < 0) die("fork: %s", strerror(errno));
  if (worker_pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed benchmark */
    if (getppid() != parent) _exit(1);
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execv(UVWOOL_WORKER_PATH, (char *const *)argv);
    _exit(127);
  }
  close(fds[1]);
  worker_out = fds[0];
  const char *tag = "uvwool-worker: listening on ";
  char buf[1024];
  size_t len = 0;
  for (;;) {
    struct pollfd p = {worker_out, POLLIN, 0};
    if (poll(&p, 1, 30000) <= 0) die("the worker did not report it was listening within 30 s");
    ssize_t n = read(worker_out, buf + len, sizeof(buf) - 1 - len);
    if (n <= 0) die("the worker (%s) exited before listening", UVWOOL_WORKER_PATH);
    len += (size_t)n;
    buf[len] = '\0';
    char *nl;
    while ((nl = strchr(buf, '\n')) != NULL) {
      *nl = '\0';
      if (strncmp(buf, tag, strlen(tag)) == 0) {
        size_t alen = strlen(buf + strlen(tag));
        if (alen >= sizeof(address)) die("the worker's address is too long: %s", buf + strlen(tag));
        memcpy(address, buf + strlen(tag), alen + 1);
        return;
      }
      len -= (size_t)(nl + 1 - buf);
      memmove(buf, nl + 1, len + 1);
    }
    if (len == sizeof(buf) - 1) len = 0; /* an overlong line without the tag */
  }
}

/* SIGTERM and the exit status, which must be a clean 0. Returns 0 if so. */
static int stop_worker(void) {
  kill(worker_pid, SIGTERM);
  int status = 0;
  pid_t got = waitpid(worker_pid, &status, 0);
  worker_pid = -1;
  close(worker_out);
  int clean = got > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!clean) fprintf(stderr, "bench_dispatch: the worker did not shut down cleanly (status %d)\n", status);
  if (access(sock_path, F_OK) == 0) {
    fprintf(stderr, "bench_dispatch: the worker left its socket %s behind\n", sock_path);
    remove(sock_path);
    clean = 0;
  }
  return clean ? 0 : -1;
}

/* ---- the caller -------------------------------------------------------------------- */

typedef enum { ONESHOT, STREAM, PIPELINED } kind_t;
static const char *const kind_names[] = {"one-shot", "streaming", "pipelined"};

typedef struct {
  kind_t kind;
  int nvars;
  int delta;    /* over the connection with delta manifests */
  int changing; /* every variable gets a new value before each dispatch */
  long round_trips;
  double best_ns; /* best total time over the rounds */
} config_t;

static uv_loop_t loop;
static uvw_conn_t *conns[2]; /* full manifests only, delta manifests */
static uvw_conn_t *conn;     /* the run's */
static uvw_var_t *vars[MAX_VARS];

/* The run in progress. */
static const config_t *cur;
static long issued, completed, last_seen;
static uvw_dispatch_t *stream;

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* The value of variable i for dispatch k: one per dispatch when changing. */
static void value_of(int i, long k, char out[32]) {
  if (cur->changing)
    snprintf(out, 32, "bench-%d-%08ld", i, k % 100000000); /* 16 bytes */
  else
    snprintf(out, 32, "bench-value-%04d", i); /* 16 bytes */
}

/* A reply must be a Result, in a context holding exactly the bound
 * variables (unarmed when there are none), as bound for dispatch k. */
static void check_reply(const uvw_reply_t *r, int want_done, long k) {
  if (r->status != 0)
    die("%s, %d vars: round trip %ld failed: %s (%d): %s", kind_names[cur->kind], cur->nvars, completed + 1,
        uvw_err_name(r->status), r->status, r->error ? uvw_error_message(r->error) : "(no error)");
  if (!r->done != !want_done)
    die("%s, %d vars: round trip %ld: done = %d, expected %d", kind_names[cur->kind], cur->nvars, completed + 1,
        r->done, want_done);
  uvw_context_t *ctx = uvw_context_current();
  size_t size = uvw_context_size(ctx);
  int armed = uvw_context_is_armed(ctx);
  if (size != (size_t)cur->nvars || armed != (cur->nvars > 0))
    die("%s, %d vars: round trip %ld: the reply's context holds %zu variables and is %s", kind_names[cur->kind],
        cur->nvars, completed + 1, size, armed ? "armed" : "unarmed");
  if (cur->nvars > 0) { /* the last variable came back intact */
    uvw_value_t *v = uvw_context_lookup(ctx, vars[cur->nvars - 1]);
    char want[32];
    value_of(cur->nvars - 1, k, want);
    if (v == NULL || uvw_value_kind(v) != UVW_VALUE_STRING || strcmp(uvw_value_as_string(v), want) != 0)
      die("%s, %d vars: round trip %ld: bench.v%d did not come back as \"%s\"", kind_names[cur->kind], cur->nvars,
          completed + 1, cur->nvars - 1, want);
  }
}

static void set_vars(int n, long k) {
  for (int i = 0; i < n; i++) {
    char s[32];
    value_of(i, k, s);
    uvw_value_t *v = uvw_value_cstring(s);
    int rc = uvw_set(vars[i], v, NULL);
    uvw_value_unref(v);
    if (rc != 0) die("uvw_set: %s", uvw_error_message(uvw_last_error()));
  }
}

static void oneshot_cb(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg);

static void issue_oneshot(void) {
  long k = issued++;
  if (cur->changing) set_vars(cur->nvars, k);
  int rc = uvw_conn_dispatch(conn, "noop", NULL, 0, NULL, oneshot_cb, (void *)(intptr_t)k, NULL);
  if (rc != 0) die("uvw_conn_dispatch: %s: %s", uvw_err_name(rc), uvw_error_message(uvw_last_error()));
}

static void oneshot_cb(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg) {
  (void)d;
  check_reply(r, 1, (long)(intptr_t)arg);
  completed++;
  if (issued < cur->round_trips) issue_oneshot();
}

static void stream_cb(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg) {
  check_reply(r, 0, (long)(intptr_t)arg);
  completed++;
  if (issued < cur->round_trips) {
    long k = issued++;
    if (cur->changing) set_vars(cur->nvars, k);
    int rc = uvw_dispatch_next(d, stream_cb, (void *)(intptr_t)k);
    if (rc != 0) die("uvw_dispatch_next: %s: %s", uvw_err_name(rc), uvw_error_message(uvw_last_error()));
  }
}

static void watchdog_cb(uv_timer_t *t) {
  (void)t;
  if (completed == last_seen)
    die("%s, %d vars: no reply for %d ms (%ld of %ld round trips done)", kind_names[cur->kind], cur->nvars,
        WATCHDOG_MS, completed, cur->round_trips);
  last_seen = completed;
}

/* One run of a configuration in a fresh context; total ns. */
static double run(const config_t *c) {
  cur = c;
  conn = conns[c->delta];
  issued = completed = last_seen = 0;
  uvw_context_t *ctx = uvw_context_new();
  if (ctx == NULL || uvw_context_enter(ctx) != 0) die("cannot enter a fresh context");
  set_vars(c->nvars, 0);
  uv_timer_t dog;
  uv_timer_init(&loop, &dog);
  uv_timer_start(&dog, watchdog_cb, WATCHDOG_MS, WATCHDOG_MS);

  double t0 = now_ns();
  if (c->kind == STREAM) {
    int rc = uvw_conn_dispatch_stream(conn, "noop_stream", NULL, 0, NULL, &stream);
    if (rc != 0) die("uvw_conn_dispatch_stream: %s: %s", uvw_err_name(rc), uvw_error_message(uvw_last_error()));
    issued++;
    rc = uvw_dispatch_next(stream, stream_cb, (void *)(intptr_t)0);
    if (rc != 0) die("uvw_dispatch_next: %s: %s", uvw_err_name(rc), uvw_error_message(uvw_last_error()));
  } else {
    long first = c->kind == PIPELINED ? PIPELINE : 1;
    for (long i = 0; i < first && issued < c->round_trips; i++) issue_oneshot();
  }
  while (completed < c->round_trips) uv_run(&loop, UV_RUN_ONCE);
  double t = now_ns() - t0;

  if (c->kind == STREAM) {
    uvw_dispatch_close(stream); /* still open: the worker is told to end it */
    stream = NULL;
  }
  if (uvw_conn_pending(conn) != 0) die("%zu dispatches still pending after the run", uvw_conn_pending(conn));
  uv_close((uv_handle_t *)&dog, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  if (uvw_context_exit(ctx) != 0) die("cannot exit the run's context");
  uvw_context_unref(ctx);
  return t;
}

static void conn_closed(void *arg) { ++*(int *)arg; }

static const config_t *find(const config_t *cs, size_t n, kind_t kind, int nvars, int delta, int changing) {
  for (size_t i = 0; i < n; i++)
    if (cs[i].kind == kind && cs[i].nvars == nvars && cs[i].delta == delta && cs[i].changing == changing)
      return &cs[i];
  return NULL;
}

static double ratio_of(const config_t *c, const config_t *base) {
  return (base->best_ns / (double)base->round_trips) / (c->best_ns / (double)c->round_trips);
}

int main(int argc, char **argv) {
  double scale = argc > 1 ? atof(argv[1]) : 1.0;
  if (!(scale > 0)) {
    fprintf(stderr, "usage: %s [SCALE > 0]\n", argv[0]);
    return 2;
  }
  long seq = (long)(SEQUENTIAL_ROUND_TRIPS * scale), pip = (long)(PIPELINED_ROUND_TRIPS * scale);
  if (seq < 1) seq = 1;
  if (pip < 1) pip = 1;
  signal(SIGPIPE, SIG_IGN); /* a dead worker is a failed reply, not a dead benchmark */
  /* Pin before the fork: the worker inherits the mask (see the top). */
  const char *pin_env = getenv("UVWOOL_BENCH_PIN");
  int pinned = -1;
  if (pin_env == NULL || strcmp(pin_env, "0") != 0) {
    int cpu = sched_getcpu();
    cpu_set_t set;
    CPU_ZERO(&set);
    if (cpu >= 0) CPU_SET(cpu, &set);
    if (cpu < 0 || sched_setaffinity(0, sizeof(set), &set) != 0) die("cannot pin to one CPU: %s", strerror(errno));
    pinned = cpu;
  }

  for (int i = 0; i < MAX_VARS; i++) {
    char name[16];
    snprintf(name, sizeof(name), "v%d", i);
    if (uvw_var_declare("bench", name, NULL, &vars[i]) != 0)
      die("uvw_var_declare: %s", uvw_error_message(uvw_last_error()));
  }

  start_worker();
  if (uv_loop_init(&loop) != 0) die("uv_loop_init");
  int rc = 0;
  for (int delta = 0; delta < 2; delta++) {
    rc = uvw_conn_open(&loop, address, &conns[delta]);
    if (rc == 0) rc = uvw_conn_set_delta_manifests(conns[delta], delta);
    if (rc != 0) die("uvw_conn_open(%s): %s: %s", address, uvw_err_name(rc), uvw_error_message(uvw_last_error()));
  }

  /* kind, vars, delta, changing */
  config_t cs[] = {
      {ONESHOT, 0, 0, 0, seq, 1e300},   {ONESHOT, 1, 0, 0, seq, 1e300},   {ONESHOT, 8, 0, 0, seq, 1e300},
      {ONESHOT, 8, 0, 1, seq, 1e300},   {ONESHOT, 8, 1, 0, seq, 1e300},   {ONESHOT, 8, 1, 1, seq, 1e300},
      {STREAM, 0, 0, 0, seq, 1e300},    {STREAM, 1, 0, 0, seq, 1e300},    {STREAM, 8, 0, 0, seq, 1e300},
      {STREAM, 8, 0, 1, seq, 1e300},    {STREAM, 8, 1, 0, seq, 1e300},    {STREAM, 8, 1, 1, seq, 1e300},
      {PIPELINED, 0, 0, 0, pip, 1e300}, {PIPELINED, 8, 0, 0, pip, 1e300}, {PIPELINED, 8, 0, 1, pip, 1e300},
      {PIPELINED, 8, 1, 0, pip, 1e300}, {PIPELINED, 8, 1, 1, pip, 1e300},
  };
  size_t ncs = sizeof cs / sizeof cs[0];

  /* Warm up: the connection, both routines, the allocator. */
  for (size_t i = 0; i < ncs; i++) {
    config_t w = cs[i];
    w.round_trips = w.round_trips / 10 > 0 ? w.round_trips / 10 : 1;
    run(&w);
  }
  for (int round = 0; round < ROUNDS; round++)
    for (size_t i = 0; i < ncs; i++) {
      double t = run(&cs[i]);
      if (t < cs[i].best_ns) cs[i].best_ns = t;
    }

  int closed = 0;
  for (int delta = 0; delta < 2; delta++) uvw_conn_close(conns[delta], conn_closed, &closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  int problems = 0;
  if (closed != 2) {
    fprintf(stderr, "bench_dispatch: the connection's close callback ran %d times\n", closed);
    problems++;
  }
  if ((rc = uvw_loop_close(&loop)) != 0) {
    fprintf(stderr, "bench_dispatch: uvw_loop_close: %s\n", uv_strerror(rc));
    problems++;
  }
  if (stop_worker() != 0) problems++;

  printf("uvwool dispatch benchmark: round trips to one uvwool-worker over %s\n", address);
  printf("build type: %s; best of %d alternating rounds; routines noop / noop_stream;\n", UVWOOL_BENCH_BUILD_TYPE,
         ROUNDS);
  printf("variables: 16-byte strings in namespace \"bench\"; pipelined = %d one-shot dispatches in flight\n",
         PIPELINE);
  if (pinned >= 0)
    printf("caller and worker pinned to CPU %d (UVWOOL_BENCH_PIN=0: unpinned)\n\n", pinned);
  else
    printf("unpinned (UVWOOL_BENCH_PIN=0): sequential numbers include cross-CPU wake-ups\n\n");
  printf("%-50s %11s %14s %14s %15s\n", "config", "round trips", "round trips/s", "us/round trip", "vs no-context");
  for (size_t i = 0; i < ncs; i++) {
    const config_t *c = &cs[i], *base = find(cs, ncs, c->kind, 0, 0, 0);
    char name[80];
    snprintf(name, sizeof(name), "%s, %d var%s%s%s", kind_names[c->kind], c->nvars, c->nvars == 1 ? "" : "s",
             c->nvars == 0 ? " (no context)" : c->changing ? ", all change" : ", unchanged",
             c->nvars == 0 ? "" : c->delta ? ", delta manifests" : ", full manifests");
    double per_s = (double)c->round_trips / (c->best_ns / 1e9);
    double us = c->best_ns / 1e3 / (double)c->round_trips;
    printf("%-50s %11ld %14.0f %14.2f %14.3fx\n", name, c->round_trips, per_s, us, ratio_of(c, base));
  }
  printf("\ntargets at 8 variables, as ratios to no-context, a verdict for each mode:\n");
  for (int k = ONESHOT; k <= PIPELINED; k++)
    for (int changing = 0; changing < 2; changing++) {
      const config_t *c0 = find(cs, ncs, (kind_t)k, 0, 0, 0);
      double full = ratio_of(find(cs, ncs, (kind_t)k, 8, 0, changing), c0);
      double delta = ratio_of(find(cs, ncs, (kind_t)k, 8, 1, changing), c0);
      double goal = changing ? DELTA_CHANGING_TARGET : DELTA_UNCHANGED_TARGET;
      printf("  %-10s %-11s full manifests %.3fx %s, delta manifests %.3fx %s  (goal >= %.2fx)\n", kind_names[k],
             changing ? "all change" : "unchanged", full, full >= goal ? "PASS" : "MISS", delta,
             delta >= goal ? "PASS" : "MISS", goal);
    }
  if (problems) printf("\nshutdown problems: %d (see stderr)\n", problems);
  return problems ? 1 : 0;
}
