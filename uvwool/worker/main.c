/* uvwool-worker: serve the routines of one or more shared objects.
 *
 *   uvwool-worker --routines ./libmyroutines.so --listen pipe:/run/my.sock
 *                 [--listen tcp:127.0.0.1:7000] [--strict] [--dispatch-timeout MS]
 *                 [--max-connections N] [--frame-timeout MS] [--idle-timeout MS] ...
 *
 * The --max-* and --*-timeout flags set the per-peer limits
 * (uvw_worker_set_limits, docs/dispatch.md "Limits"); a value must be a
 * positive integer.
 *
 * Each shared object exports `int uvwool_worker_init(uvw_worker_t *w)`,
 * which registers its routines (uvw_worker_register) and returns 0. Once
 * every address is bound the worker prints one line per listener,
 * "uvwool-worker: listening on ADDRESS" (the port filled in for tcp:HOST:0),
 * so a supervisor or a parent process knows it is ready. SIGINT or SIGTERM
 * closes it cleanly: listeners and connections closed, pipe sockets
 * removed, exit 0. */
#include <dlfcn.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uvwool.h>

#define MAX_ITEMS 16

typedef int (*init_fn)(uvw_worker_t *w);

static uv_signal_t sigint_h, sigterm_h;
static uvw_worker_t *worker;

#define USAGE                                                                                               \
  "usage: uvwool-worker --routines LIB.so [--routines ...] --listen pipe:PATH|tcp:HOST:PORT [--listen ...]\n" \
  "                     [--strict|--lenient] [--dispatch-timeout MS]\n"                                     \
  "                     [--max-connections N] [--max-dispatches N] [--max-inflight-bytes N]\n"            \
  "                     [--max-stubs N] [--max-chains N] [--write-high-water BYTES]\n"                    \
  "                     [--frame-timeout MS] [--idle-timeout MS]\n"

static int usage(const char *why) {
  fprintf(stderr, "uvwool-worker: %s\n" USAGE, why);
  return 2;
}

static void report(const char *what, const uvw_error_t *e) {
  fprintf(stderr, "uvwool-worker: %s: %s: %s", what, uvw_error_kind_name(uvw_error_kind(e)), uvw_error_message(e));
  for (size_t i = 0; i < uvw_error_field_count(e); i++)
    fprintf(stderr, " %s=%s", uvw_error_field_name(e, i), uvw_error_field_value(e, i));
  fputc('\n', stderr);
}

static void on_peer_error(uvw_worker_t *w, const uvw_error_t *e, void *arg) {
  (void)w;
  (void)arg;
  report("peer dropped", e);
}

static void on_signal(uv_signal_t *h, int signum) {
  fprintf(stderr, "uvwool-worker: %s, closing\n", signum == SIGINT ? "SIGINT" : "SIGTERM");
  uv_close((uv_handle_t *)&sigint_h, NULL);
  uv_close((uv_handle_t *)&sigterm_h, NULL);
  (void)h;
  uvw_worker_close(worker, NULL, NULL);
}

/* ---- per-peer limits (docs/dispatch.md, "Limits"): --max-* and --*-timeout ---- */

static int limit_option(const char *a, const char *v, uvw_worker_limits_t *l) {
  static const struct {
    const char *flag;
    size_t offset;
    int is_u64;
  } opts[] = {
      {"--max-connections", offsetof(uvw_worker_limits_t, max_connections), 0},
      {"--max-dispatches", offsetof(uvw_worker_limits_t, max_dispatches), 0},
      {"--max-inflight-bytes", offsetof(uvw_worker_limits_t, max_inflight_bytes), 0},
      {"--max-stubs", offsetof(uvw_worker_limits_t, max_stubs), 0},
      {"--max-chains", offsetof(uvw_worker_limits_t, max_chains), 0},
      {"--write-high-water", offsetof(uvw_worker_limits_t, write_high_water), 0},
      {"--frame-timeout", offsetof(uvw_worker_limits_t, frame_timeout_ms), 1},
      {"--idle-timeout", offsetof(uvw_worker_limits_t, idle_timeout_ms), 1},
  };
  for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
    if (strcmp(a, opts[i].flag) != 0) continue;
    char *end;
    unsigned long long n = v ? strtoull(v, &end, 10) : 0;
    if (v == NULL || *v == '\0' || *end != '\0' || n == 0) return -1;
    if (opts[i].is_u64)
      *(uint64_t *)((char *)l + opts[i].offset) = (uint64_t)n;
    else
      *(size_t *)((char *)l + opts[i].offset) = (size_t)n;
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *libs[MAX_ITEMS], *addrs[MAX_ITEMS];
  size_t nlibs = 0, naddrs = 0;
  int strict = 0;
  uint64_t timeout_ms = 0;
  uvw_worker_limits_t limits;
  uvw_worker_limits_default(&limits);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int lim = limit_option(a, v, &limits);
    if (lim < 0) return usage(a);
    if (lim > 0) {
      i++;
      continue;
    }
    if (strcmp(a, "--routines") == 0 && v && nlibs < MAX_ITEMS)
      libs[nlibs++] = argv[++i];
    else if (strcmp(a, "--listen") == 0 && v && naddrs < MAX_ITEMS)
      addrs[naddrs++] = argv[++i];
    else if (strcmp(a, "--strict") == 0)
      strict = 1;
    else if (strcmp(a, "--lenient") == 0)
      strict = 0;
    else if (strcmp(a, "--dispatch-timeout") == 0 && v)
      timeout_ms = strtoull(argv[++i], NULL, 10);
    else if (strcmp(a, "--help") == 0)
      return printf("uvwool-worker (uvwool %s)\n" USAGE, uvw_version_string()) < 0;
    else
      return usage(a);
  }
  if (nlibs == 0 || naddrs == 0) return usage("need --routines and --listen");
  signal(SIGPIPE, SIG_IGN); /* a caller hanging up mid-write is a read error, not a death */
  uvw_set_strict(strict);

  uv_loop_t *loop = uv_default_loop();
  if (uvw_worker_open(loop, &worker) != 0) return 1;
  uvw_worker_on_error(worker, on_peer_error, NULL);
  if (timeout_ms) uvw_worker_set_dispatch_timeout(worker, timeout_ms);
  if (uvw_worker_set_limits(worker, &limits) != 0) {
    report("limits", uvw_last_error());
    return 2;
  }
  void *handles[MAX_ITEMS];
  for (size_t i = 0; i < nlibs; i++) {
    handles[i] = dlopen(libs[i], RTLD_NOW | RTLD_LOCAL);
    init_fn init = handles[i] ? (init_fn)(uintptr_t)dlsym(handles[i], "uvwool_worker_init") : NULL;
    if (init == NULL) {
      fprintf(stderr, "uvwool-worker: %s: %s\n", libs[i], dlerror());
      return 1;
    }
    if (init(worker) != 0) {
      report(libs[i], uvw_last_error());
      return 1;
    }
  }
  /* Before announcing readiness: a supervisor may stop us right after. */
  uv_signal_init(loop, &sigint_h);
  uv_signal_init(loop, &sigterm_h);
  uv_signal_start(&sigint_h, on_signal, SIGINT);
  uv_signal_start(&sigterm_h, on_signal, SIGTERM);
  for (size_t i = 0; i < naddrs; i++) {
    if (uvw_worker_listen(worker, addrs[i]) != 0) {
      report("listen", uvw_last_error());
      return 1;
    }
    char bound[200];
    uvw_worker_address(worker, i, bound, sizeof(bound));
    printf("uvwool-worker: listening on %s\n", bound);
  }
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  uvw_loop_close(loop);
  for (size_t i = 0; i < nlibs; i++) dlclose(handles[i]);
  fprintf(stderr, "uvwool-worker: closed\n");
  return 0;
}
