/* Load on one real uvwool-worker over a unix socket: dispatches per second,
 * latency p50/p99, the worker's RSS and open fds, at 1, 10, 100 and 500
 * connections, 8 context variables bound, every reply checked for
 * cross-talk. A benchmark, not a test:
 *
 *   cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DUVWOOL_BUILD_BENCH=ON
 *   cmake --build build/bench --target bench_load
 *   build/bench/tests/bench/bench_load [SECONDS per level, default 2] [ROUNDS, default 3]
 *
 * Each connection is a closed-loop client: one "read_and_mutate"
 * (tests/dispatch/routines.c) in flight, the next issued from the reply's
 * callback. Every dispatch runs in a copy of its connection's context with
 * its own t.request_id ("c<conn>-<seq>"), the connection's t.tenant, and six
 * more strings in namespace "bench" (stubs on the worker, which travel there
 * and back). A reply must be a Result "saw:c<conn>-<seq>" and run in a
 * context where the worker's changes are merged (request_id
 * "c<conn>-<seq>+worker", counter seq + 1) and every other variable is this
 * connection's: any cross-talk between connections or dispatches aborts.
 *
 * Connections are opened in batches of 32, each warmed up by one dispatch
 * before the next batch, so the listen backlog is never flooded (a connect
 * flood is a separate attack: see docs/dispatch.md). RLIMIT_NOFILE is raised
 * soft to hard before the worker is forked, so both sides may hold 500+
 * fds. The figures are the worker's /proc/<pid>/status VmRSS and VmHWM and
 * the count of /proc/<pid>/fd, read at the end of each level with its
 * connections still open. Each level runs with full manifests and with
 * delta manifests (uvw_conn_set_delta_manifests), one after the other,
 * ROUNDS times alternating (one round of a few seconds is not steady on a
 * shared host): the gain printed at the end is the best delta round over
 * the best full round. The worker changes request_id and counter each
 * time, the caller sets a new request_id: 2 of the 8 variables change per
 * dispatch. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "uvwool.h"
#include "uvwool/dispatch.h"

#define BATCH 32
#define WATCHDOG_MS 15000
#define NVARS 8

static const int levels[] = {1, 10, 100, 500};

static pid_t worker_pid = -1;
static char sock_path[128], address[200];

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("bench_load: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  if (worker_pid > 0) kill(worker_pid, SIGKILL);
  if (sock_path[0]) remove(sock_path);
  exit(1);
}

static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) die("getrlimit: %s", strerror(errno));
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die("setrlimit: %s", strerror(errno));
  if (rl.rlim_cur < 1200) die("RLIMIT_NOFILE hard limit %lu is too low for 500 connections", (unsigned long)rl.rlim_cur);
}

static void start_worker(void) {
  snprintf(sock_path, sizeof sock_path, "/tmp/uvwool-bench-load-%d.sock", (int)getpid());
  remove(sock_path);
  char listen[160];
  snprintf(listen, sizeof listen, "pipe:%s", sock_path);
  /* The top level (500 connections) is above the default connection cap
   * (256, docs/dispatch.md "Limits"): raise it, as a deployment that
   * expects that many callers would. */
  const char *argv[] = {UVWOOL_WORKER_PATH, "--routines", UVWOOL_TEST_ROUTINES, "--listen", listen,
                        "--max-connections", "1024", NULL};
  int fds[2];
  if (pipe(fds) != 0) die("pipe: %s", strerror(errno));
  worker_pid = fork();
  if (worker_pid < 0) die("fork: %s", strerror(errno));
  if (worker_pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execv(UVWOOL_WORKER_PATH, (char *const *)argv);
    _exit(127);
  }
  close(fds[1]);
  const char *tag = "uvwool-worker: listening on ";
  char buf[1024];
  size_t len = 0;
  for (;;) {
    struct pollfd p = {fds[0], POLLIN, 0};
    if (poll(&p, 1, 30000) <= 0) die("the worker did not report it was listening within 30 s");
    ssize_t n = read(fds[0], buf + len, sizeof buf - 1 - len);
    if (n <= 0) die("the worker exited before listening");
    len += (size_t)n;
    buf[len] = '\0';
    char *at = strstr(buf, tag), *nl = at ? strchr(at, '\n') : NULL;
    if (nl) {
      *nl = '\0';
      snprintf(address, sizeof address, "%s", at + strlen(tag));
      break;
    }
    if (len == sizeof buf - 1) len = 0;
  }
  close(fds[0]);
}

static long status_kb(const char *field) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)worker_pid);
  FILE *f = fopen(path, "r");
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, field, strlen(field)) == 0) kb = atol(line + strlen(field) + 1);
  if (f) fclose(f);
  return kb;
}

static int worker_fds(void) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", (int)worker_pid);
  DIR *d = opendir(path);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d)) != NULL;) n += e->d_name[0] != '.';
  if (d) closedir(d);
  return n;
}

/* ---- clients ------------------------------------------------------------------------ */

static uv_loop_t loop;
static uvw_var_t *request_id, *tenant, *counter, *extra[NVARS - 2];

typedef struct {
  int index;
  uvw_conn_t *conn;
  uvw_context_t *base; /* tenant + the six extras */
  long seq;
  double sent_ns;
  int warm;
} client_t;

static client_t *clients;
static int nclients, warmed;
static int timing;
static double *lat;
static long nlat, latcap, done_count, inflight;
static double last_progress;

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static const char *str_of(uvw_var_t *v) {
  uvw_value_t *x = NULL;
  if (uvw_get_or(v, NULL, &x) != 0 || x == NULL || uvw_value_kind(x) != UVW_VALUE_STRING) return NULL;
  return uvw_value_as_string(x);
}

static void on_reply(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg);

static void issue(client_t *c) {
  uvw_context_t *ctx = uvw_context_copy(c->base);
  if (ctx == NULL || uvw_context_enter(ctx) != 0) die("context");
  char rid[48];
  snprintf(rid, sizeof rid, "c%d-%ld", c->index, ++c->seq);
  if (uvw_set_cstring(request_id, rid, NULL) != 0) die("set");
  uvw_value_t *n = uvw_value_int(c->seq);
  c->sent_ns = now_ns();
  inflight++;
  int rc = uvw_conn_dispatch(c->conn, "read_and_mutate", &n, 1, NULL, on_reply, c, NULL);
  uvw_value_unref(n);
  if (rc != 0) die("dispatch on connection %d: %s", c->index, uvw_err_name(rc));
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
}

static void check(const client_t *c, const uvw_reply_t *r) {
  if (r->status != 0)
    die("connection %d, dispatch %ld: %s: %s", c->index, c->seq, uvw_err_name(r->status),
        r->error ? uvw_error_message(r->error) : "");
  char want[80];
  snprintf(want, sizeof want, "saw:c%d-%ld", c->index, c->seq);
  if (uvw_value_kind(r->value) != UVW_VALUE_STRING || strcmp(uvw_value_as_string(r->value), want) != 0)
    die("cross-talk: connection %d got '%s', expected '%s'", c->index,
        uvw_value_kind(r->value) == UVW_VALUE_STRING ? uvw_value_as_string(r->value) : "?", want);
  snprintf(want, sizeof want, "c%d-%ld+worker", c->index, c->seq);
  const char *s = str_of(request_id);
  if (s == NULL || strcmp(s, want) != 0) die("cross-talk: request_id '%s', expected '%s'", s ? s : "-", want);
  uvw_value_t *cnt = NULL;
  if (uvw_get_or(counter, NULL, &cnt) != 0 || cnt == NULL || uvw_value_kind(cnt) != UVW_VALUE_INT ||
      uvw_value_as_int(cnt) != c->seq + 1)
    die("cross-talk: counter of connection %d, dispatch %ld", c->index, c->seq);
  char mine[48];
  snprintf(mine, sizeof mine, "tenant-%d", c->index);
  if ((s = str_of(tenant)) == NULL || strcmp(s, mine) != 0) die("cross-talk: tenant '%s' on %d", s ? s : "-", c->index);
  for (int i = 0; i < NVARS - 2; i++) {
    snprintf(mine, sizeof mine, "x%d-of-%d", i, c->index);
    if ((s = str_of(extra[i])) == NULL || strcmp(s, mine) != 0)
      die("cross-talk: bench.v%d '%s' on connection %d", i, s ? s : "-", c->index);
  }
}

static void on_reply(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg) {
  (void)d;
  client_t *c = arg;
  double t = now_ns();
  inflight--;
  check(c, r);
  last_progress = t;
  if (!c->warm) {
    c->warm = 1;
    warmed++;
    return;
  }
  if (timing) {
    if (nlat == latcap) {
      latcap = latcap ? latcap * 2 : 1 << 16;
      lat = realloc(lat, (size_t)latcap * sizeof *lat);
      if (lat == NULL) die("oom");
    }
    lat[nlat++] = t - c->sent_ns;
    done_count++;
    issue(c);
  }
}

static void watchdog(uv_timer_t *t) {
  (void)t;
  if (now_ns() - last_progress > WATCHDOG_MS * 1e6) die("no reply for %d ms", WATCHDOG_MS);
}

static void stop_loop(uv_timer_t *t) {
  (void)t;
  timing = 0;
}

static int delta_on; /* the level's connections use delta manifests */

static void open_client(client_t *c, int index) {
  c->index = index;
  if (uvw_conn_open(&loop, address, &c->conn) != 0 || uvw_conn_set_delta_manifests(c->conn, delta_on) != 0)
    die("conn_open: %s", uvw_error_message(uvw_last_error()));
  c->base = uvw_context_new();
  if (c->base == NULL || uvw_context_enter(c->base) != 0) die("context");
  char s[48];
  snprintf(s, sizeof s, "tenant-%d", index);
  uvw_set_cstring(tenant, s, NULL);
  for (int i = 0; i < NVARS - 2; i++) {
    snprintf(s, sizeof s, "x%d-of-%d", i, index);
    uvw_set_cstring(extra[i], s, NULL);
  }
  uvw_context_exit(c->base);
  issue(c); /* the warm-up */
}

static void run_until_warm(int want) {
  while (warmed < want) uv_run(&loop, UV_RUN_ONCE);
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void on_closed(void *arg) { (*(int *)arg)--; }

static double level(int n, double seconds) {
  clients = calloc((size_t)n, sizeof *clients);
  nclients = n;
  warmed = 0;
  for (int i = 0; i < n; i += BATCH) {
    int end = i + BATCH < n ? i + BATCH : n;
    for (int k = i; k < end; k++) open_client(&clients[k], k);
    run_until_warm(end);
  }
  nlat = done_count = 0;
  timing = 1;
  uv_timer_t stop;
  uv_timer_init(&loop, &stop);
  uv_timer_start(&stop, stop_loop, (uint64_t)(seconds * 1000), 0);
  double t0 = now_ns();
  for (int i = 0; i < n; i++) issue(&clients[i]);
  while (timing) uv_run(&loop, UV_RUN_ONCE);
  double elapsed = (now_ns() - t0) / 1e9;
  long rss = status_kb("VmRSS:"), hwm = status_kb("VmHWM:");
  int fds = worker_fds();
  /* Let the dispatches in flight land (they issue nothing more): a close
   * would cancel them. */
  while (inflight > 0) uv_run(&loop, UV_RUN_ONCE);
  int open = n;
  for (int i = 0; i < n; i++) uvw_conn_close(clients[i].conn, on_closed, &open);
  while (open > 0) uv_run(&loop, UV_RUN_ONCE);
  for (int i = 0; i < n; i++) uvw_context_unref(clients[i].base);
  uv_close((uv_handle_t *)&stop, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  qsort(lat, (size_t)nlat, sizeof *lat, by_value);
  double p50 = nlat ? lat[nlat / 2] / 1e3 : 0, p99 = nlat ? lat[(long)(nlat * 0.99)] / 1e3 : 0;
  printf("%11d %-6s %14.0f %10.1f %10.1f %12ld %12ld %10d\n", n, delta_on ? "delta" : "full", done_count / elapsed,
         p50, p99, rss, hwm, fds);
  fflush(stdout);
  free(clients);
  return done_count / elapsed;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 2.0;
  if (seconds <= 0) seconds = 2.0;
  int rounds = argc > 2 ? atoi(argv[2]) : 3;
  if (rounds < 1) rounds = 1;
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  start_worker();
  if (uv_loop_init(&loop) != 0) die("loop");
  int rc = uvw_var_declare("t", "request_id", NULL, &request_id) | uvw_var_declare("t", "tenant", NULL, &tenant) |
           uvw_var_declare("t", "counter", NULL, &counter);
  for (int i = 0; i < NVARS - 2; i++) {
    char name[16];
    snprintf(name, sizeof name, "v%d", i);
    rc |= uvw_var_declare("bench", name, NULL, &extra[i]);
  }
  if (rc != 0) die("declare");
  uv_timer_t dog;
  uv_timer_init(&loop, &dog);
  uv_timer_start(&dog, watchdog, 1000, 1000);
  last_progress = now_ns();
  printf("bench_load: %s, %d variables, %.1f s per level, %d alternating rounds, build %s\n", address, NVARS,
         seconds, rounds, UVWOOL_BENCH_BUILD_TYPE);
  printf("%11s %-6s %14s %10s %10s %12s %12s %10s\n", "connections", "mani.", "dispatches/s", "p50 us", "p99 us",
         "RSS kB", "peak RSS kB", "worker fds");
  double gain[sizeof levels / sizeof levels[0]];
  for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
    double full = 0, delta = 0;
    for (int r = 0; r < rounds; r++) {
      delta_on = 0;
      double f = level(levels[i], seconds);
      delta_on = 1;
      double d = level(levels[i], seconds);
      if (f > full) full = f;
      if (d > delta) delta = d;
    }
    gain[i] = delta / full;
  }
  printf("delta manifests vs full, best round of each, dispatches/s:");
  for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) printf(" %d conns %.3fx", levels[i], gain[i]);
  printf("\n");
  uv_close((uv_handle_t *)&dog, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  kill(worker_pid, SIGTERM);
  int status = 0;
  waitpid(worker_pid, &status, 0);
  worker_pid = -1;
  remove(sock_path);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die("the worker did not exit cleanly (status %d)", status);
  free(lat);
  printf("every reply checked: no cross-talk\n");
  return 0;
}
