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
 * removed, exit 0.
 *
 * Who may connect: --socket-mode OCTAL (default 0600) and --socket-group GID
 * for the unix sockets it creates, --allow-uid/--allow-gid (repeatable; the
 * worker's own uid is always allowed) for the peer-credential check,
 * --allow-remote to listen on TCP beyond loopback. Started by systemd
 * socket activation (LISTEN_PID is this process, LISTEN_FDS = n) it serves
 * fds 3 .. 3+n-1 when no --listen is given; --listen fd:N adopts one
 * explicitly. Peer-supplied text is escaped in every line it prints. */
#include <dlfcn.h>
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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
  "                     [--frame-timeout MS] [--idle-timeout MS] [--delta-chains N] [--no-delta-manifests]\n" \
  "                     [--socket-mode OCTAL] [--socket-group GROUP] [--allow-uid UID] [--allow-gid GID]\n" \
  "                     [--allow-remote]   (no --listen: the sockets systemd passed, LISTEN_FDS)\n"

static int usage(const char *why) {
  fprintf(stderr, "uvwool-worker: %s\n" USAGE, why);
  return 2;
}

/* Text a peer may have chosen (routine names, messages, fields) printed
 * so that it cannot forge a log line: backslash, control bytes and DEL as
 * \xNN, everything else (UTF-8 included) as is. */
static void put_escaped(const char *s) {
  for (const unsigned char *p = (const unsigned char *)(s ? s : "(null)"); *p; p++) {
    if (*p < 0x20 || *p == 0x7f || *p == '\\')
      fprintf(stderr, "\\x%02x", *p);
    else
      fputc(*p, stderr);
  }
}

static void report(const char *what, const uvw_error_t *e) {
  fprintf(stderr, "uvwool-worker: ");
  put_escaped(what);
  fprintf(stderr, ": %s: ", uvw_error_kind_name(uvw_error_kind(e)));
  put_escaped(uvw_error_message(e));
  for (size_t i = 0; i < uvw_error_field_count(e); i++) {
    fputc(' ', stderr);
    put_escaped(uvw_error_field_name(e, i));
    fputc('=', stderr);
    put_escaped(uvw_error_field_value(e, i));
  }
  fputc('\n', stderr);
}

/* ---- who may connect, and sockets passed by a supervisor ---------------------------- */

typedef struct access_opts_s {
  long mode, gid; /* -1: not given */
  uint32_t uids[MAX_ITEMS], gids[MAX_ITEMS];
  size_t nuids, ngids;
  int allow_remote;
} access_opts_t;

static int parse_id(const char *s, uint32_t *out) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (*s < '0' || *s > '9' || *end || errno || v >= UINT32_MAX) return -1;
  *out = (uint32_t)v;
  return 0;
}

/* A group by name or number. */
static int parse_group(const char *s, long *gid) {
  uint32_t n;
  if (parse_id(s, &n) == 0) {
    *gid = (long)n;
    return 0;
  }
  struct group *g = getgrnam(s);
  if (g == NULL) return -1;
  *gid = (long)g->gr_gid;
  return 0;
}

/* One access flag at argv[*i] (value at argv[*i + 1]): 1 taken, 0 not
 * one of ours, -1 bad value. */
static int access_flag(access_opts_t *o, int argc, char **argv, int *i) {
  const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
  char *end;
  if (strcmp(a, "--allow-remote") == 0) {
    o->allow_remote = 1;
    return 1;
  }
  int takes = strcmp(a, "--socket-mode") == 0 || strcmp(a, "--socket-group") == 0 ||
              strcmp(a, "--allow-uid") == 0 || strcmp(a, "--allow-gid") == 0;
  if (!takes) return 0;
  if (v == NULL) return -1;
  ++*i;
  if (strcmp(a, "--socket-mode") == 0) {
    o->mode = strtol(v, &end, 8);
    return *v && !*end && o->mode >= 0 && o->mode <= 0777 ? 1 : -1;
  }
  if (strcmp(a, "--socket-group") == 0) return parse_group(v, &o->gid) == 0 ? 1 : -1;
  if (strcmp(a, "--allow-uid") == 0) return o->nuids < MAX_ITEMS && parse_id(v, &o->uids[o->nuids++]) == 0 ? 1 : -1;
  return o->ngids < MAX_ITEMS && parse_id(v, &o->gids[o->ngids++]) == 0 ? 1 : -1;
}

static int access_apply(uvw_worker_t *w, const access_opts_t *o) {
  int rc = 0;
  if (o->mode >= 0) rc |= uvw_worker_set_socket_mode(w, (unsigned)o->mode);
  if (o->gid >= 0) rc |= uvw_worker_set_socket_group(w, o->gid);
  for (size_t i = 0; i < o->nuids; i++) rc |= uvw_worker_allow_uid(w, o->uids[i]);
  for (size_t i = 0; i < o->ngids; i++) rc |= uvw_worker_allow_gid(w, o->gids[i]);
  if (o->allow_remote) rc |= uvw_worker_set_allow_remote(w, 1);
  return rc;
}

/* systemd socket activation: the fds it passed ("fd:3" ...), when they are
 * meant for this process. The variables are cleared so that children
 * started by routines do not take the sockets for theirs. */
static size_t activation_fds(char bufs[][16], size_t max) {
  const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
  size_t n = 0;
  if (pid && fds && strtol(pid, NULL, 10) == (long)getpid()) {
    long count = strtol(fds, NULL, 10);
    for (int i = 0; i < count && n < max && i < 1024; i++) snprintf(bufs[n++], sizeof(bufs[0]), "fd:%d", 3 + i);
  }
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  return n;
}

static void on_peer_error(uvw_worker_t *w, const uvw_error_t *e, void *arg) {
  (void)w;
  (void)arg;
  /* A refused request that concerns one dispatch leaves the peer connected. */
  const char *peer = uvw_error_field(e, "peer");
  report(peer && strcmp(peer, "kept") == 0 ? "peer error" : "peer dropped", e);
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
      {"--delta-chains", offsetof(uvw_worker_limits_t, delta_chains), 0},
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
  int strict = 0, delta = 1;
  uint64_t timeout_ms = 0;
  uvw_worker_limits_t limits;
  uvw_worker_limits_default(&limits);
  access_opts_t access = {.mode = -1, .gid = -1};
  char passed[MAX_ITEMS][16];
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int lim = limit_option(a, v, &limits);
    if (lim < 0) return usage(a);
    if (lim > 0) {
      i++;
      continue;
    }
    int taken = access_flag(&access, argc, argv, &i);
    if (taken < 0) return usage(a);
    if (taken > 0) continue;
    if (strcmp(a, "--routines") == 0 && v && nlibs < MAX_ITEMS)
      libs[nlibs++] = argv[++i];
    else if (strcmp(a, "--listen") == 0 && v && naddrs < MAX_ITEMS)
      addrs[naddrs++] = argv[++i];
    else if (strcmp(a, "--strict") == 0)
      strict = 1;
    else if (strcmp(a, "--lenient") == 0)
      strict = 0;
    else if (strcmp(a, "--no-delta-manifests") == 0)
      delta = 0;
    else if (strcmp(a, "--dispatch-timeout") == 0 && v)
      timeout_ms = strtoull(argv[++i], NULL, 10);
    else if (strcmp(a, "--help") == 0)
      return printf("uvwool-worker (uvwool %s)\n" USAGE, uvw_version_string()) < 0;
    else
      return usage(a);
  }
  if (naddrs == 0) {
    size_t n = activation_fds(passed, MAX_ITEMS);
    for (size_t i = 0; i < n; i++) addrs[naddrs++] = passed[i];
  }
  if (nlibs == 0 || naddrs == 0) return usage("need --routines and --listen (or sockets passed by systemd)");
  signal(SIGPIPE, SIG_IGN); /* a caller hanging up mid-write is a read error, not a death */
  uvw_set_strict(strict);

  uv_loop_t *loop = uv_default_loop();
  if (uvw_worker_open(loop, &worker) != 0) return 1;
  uvw_worker_on_error(worker, on_peer_error, NULL);
  if (timeout_ms) uvw_worker_set_dispatch_timeout(worker, timeout_ms);
  uvw_worker_set_delta_manifests(worker, delta);
  if (uvw_worker_set_limits(worker, &limits) != 0) {
    report("limits", uvw_last_error());
    return 2;
  }
  if (access_apply(worker, &access) != 0) {
    report("access settings", uvw_last_error());
    return 1;
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
