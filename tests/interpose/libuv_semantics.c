/* libuv's own behaviour where uvwool's wrappers used to change it, as a
 * deterministic event log on stdout. Plain libuv only: run_semantics.sh runs
 * it without any transparent mode, under the preload and built in link-time
 * mode, and the logs must be identical. Nothing nondeterministic is printed.
 *
 *  - uv_read_start(NULL, ...) is UV_EINVAL (it crashed in the wrapper);
 *  - starts on a closing handle: libuv's answer, and what fires after;
 *  - the rest of a recvmmsg batch after uv_close, and its final
 *    free-the-buffer call (UV_UDP_MMSG_FREE), reach the callback;
 *  - an exit callback libuv delivers for a process another exit callback
 *    closed reaches the callback;
 *  - starting an active idle / check / prepare again keeps the first
 *    callback;
 *  - 40,000 queued works all complete. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <uv.h>

#define LOG(...) (printf(__VA_ARGS__), putchar('\n'))

static const char *err(int rc) { return rc == 0 ? "0" : uv_err_name(rc); }
static uv_loop_t *loop;

/* ---- NULL streams ---- */
static void no_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  (void)h, (void)n;
  *b = uv_buf_init(NULL, 0);
}
static void no_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) { (void)s, (void)n, (void)b; }

/* ---- closing handles ---- */
static int late_fired;
static void late_timer(uv_timer_t *t) { (void)t, late_fired++; }
static void closed(uv_handle_t *h) { LOG("close callback: %s", (const char *)h->data); }

static void closing_handles(void) {
  uv_timer_t t;
  uv_idle_t i;
  uv_check_t c;
  uv_prepare_t p;
  uv_udp_t u;
  uv_pipe_t pipe;
  uv_timer_init(loop, &t);
  uv_idle_init(loop, &i);
  uv_check_init(loop, &c);
  uv_prepare_init(loop, &p);
  uv_udp_init(loop, &u);
  uv_pipe_init(loop, &pipe, 0);
  t.data = "timer", i.data = "idle", c.data = "check", p.data = "prepare", u.data = "udp", pipe.data = "pipe";
  uv_handle_t *all[] = {(uv_handle_t *)&t, (uv_handle_t *)&i, (uv_handle_t *)&c,
                        (uv_handle_t *)&p, (uv_handle_t *)&u, (uv_handle_t *)&pipe};
  for (int k = 0; k < 6; k++) uv_close(all[k], closed);
  LOG("closing timer_start: %s", err(uv_timer_start(&t, late_timer, 0, 0)));
  /* (not idle/check/prepare_start: libuv accepts them and the loop never
   * ends; nor udp_recv_start: libuv asserts at close) */
  LOG("closing read_start: %s", err(uv_read_start((uv_stream_t *)&pipe, no_alloc, no_read)));
  LOG("closing listen: %s", err(uv_listen((uv_stream_t *)&pipe, 1, NULL)));
  uv_run(loop, UV_RUN_DEFAULT);
  LOG("callbacks after close: %d", late_fired);
}

/* ---- the rest of a recvmmsg batch after uv_close ---- */
static uv_udp_t mm;
static int mm_calls, mm_frees;
static void mm_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  (void)h, (void)n;
  *b = uv_buf_init(malloc(256 * 1024), 256 * 1024);
}
static void mm_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *a, unsigned flags) {
  (void)a;
  mm_calls++;
  LOG("mmsg recv %d: nread %zd%s%s%s", mm_calls, n, flags & UV_UDP_MMSG_CHUNK ? " chunk" : "",
      flags & UV_UDP_MMSG_FREE ? " free" : "", uv_is_closing((uv_handle_t *)h) ? " closing" : "");
  if (flags & UV_UDP_MMSG_FREE) {
    mm_frees++;
    free(b->base);
  } else if (!(flags & UV_UDP_MMSG_CHUNK)) {
    free(b->base); /* not from a batch: the buffer is this call's */
  }
  if (!uv_is_closing((uv_handle_t *)h)) uv_close((uv_handle_t *)h, closed);
}

static void recvmmsg_after_close(void) {
  struct sockaddr_in any, addr;
  uv_ip4_addr("127.0.0.1", 0, &any);
  uv_udp_init_ex(loop, &mm, AF_INET | UV_UDP_RECVMMSG);
  mm.data = "mmsg";
  uv_udp_bind(&mm, (const struct sockaddr *)&any, 0);
  int len = sizeof addr;
  uv_udp_getsockname(&mm, (struct sockaddr *)&addr, &len);
  uv_udp_t tx;
  uv_udp_init(loop, &tx);
  tx.data = "sender";
  for (int k = 0; k < 3; k++) {
    uv_buf_t b = uv_buf_init("datagram", 8);
    uv_udp_try_send(&tx, &b, 1, (const struct sockaddr *)&addr);
  }
  uv_close((uv_handle_t *)&tx, closed);
  LOG("mmsg recv_start: %s", err(uv_udp_recv_start(&mm, mm_alloc, mm_recv)));
  uv_run(loop, UV_RUN_DEFAULT);
  LOG("mmsg calls %d, buffers freed %d", mm_calls, mm_frees);
}

/* ---- an exit callback for a process another exit callback closed ---- */
static uv_process_t pair[2];
static void pair_exit(uv_process_t *p, int64_t status, int sig) {
  int i = p == &pair[1];
  LOG("exit %d: status %ld signal %d%s", i, (long)status, sig, uv_is_closing((uv_handle_t *)p) ? " closing" : "");
  if (!uv_is_closing((uv_handle_t *)&pair[!i])) uv_close((uv_handle_t *)&pair[!i], closed);
  if (!uv_is_closing((uv_handle_t *)p)) uv_close((uv_handle_t *)p, closed);
}

static void exit_after_close(void) {
  char *args[] = {"/bin/sh", "-c", "exit 0", NULL};
  uv_process_options_t o;
  memset(&o, 0, sizeof o);
  o.file = args[0];
  o.args = args;
  o.exit_cb = pair_exit;
  pair[0].data = "process 0", pair[1].data = "process 1";
  for (int i = 0; i < 2; i++) LOG("spawn %d: %s", i, err(uv_spawn(loop, &pair[i], &o)));
  for (int i = 0; i < 2; i++) { /* both exited before the loop looks: one batch */
    siginfo_t info;
    waitid(P_PID, (id_t)pair[i].pid, &info, WEXITED | WNOWAIT);
  }
  uv_run(loop, UV_RUN_DEFAULT);
}

/* ---- starting an active watcher again ---- */
#define WATCHER(kind)                                                           \
  static int kind##_first, kind##_second;                                       \
  static void kind##_cb1(uv_##kind##_t *h) {                                    \
    kind##_first++;                                                             \
    uv_close((uv_handle_t *)h, closed);                                         \
  }                                                                             \
  static void kind##_cb2(uv_##kind##_t *h) {                                    \
    kind##_second++;                                                            \
    uv_close((uv_handle_t *)h, closed);                                         \
  }                                                                             \
  static void kind##_restart(void) {                                            \
    static uv_##kind##_t h;                                                     \
    uv_##kind##_init(loop, &h);                                                 \
    h.data = #kind;                                                             \
    LOG(#kind " start: %s", err(uv_##kind##_start(&h, kind##_cb1)));            \
    LOG(#kind " start again: %s", err(uv_##kind##_start(&h, kind##_cb2)));      \
    while (uv_run(loop, UV_RUN_NOWAIT)) { /* a check runs after a poll */     \
    }                                                                           \
    LOG(#kind " first callback %d, second %d", kind##_first, kind##_second);    \
  }
WATCHER(idle)
WATCHER(check)
WATCHER(prepare)

/* ---- 40,000 queued works ---- */
#define NWORKS 40000
static int works_run, works_done;
static void work(uv_work_t *r) { (void)r, __atomic_add_fetch(&works_run, 1, __ATOMIC_RELAXED); }
static void work_done(uv_work_t *r, int status) { (void)r, works_done += status == 0; }

static void many_works(void) {
  uv_work_t *reqs = calloc(NWORKS, sizeof(*reqs));
  int refused = 0;
  for (int k = 0; k < NWORKS; k++) refused += uv_queue_work(loop, &reqs[k], work, work_done) != 0;
  uv_run(loop, UV_RUN_DEFAULT);
  LOG("works: %d refused, %d run, %d done", refused, works_run, works_done);
  free(reqs);
}

static void null_stream(void) { LOG("read_start NULL stream: %s", err(uv_read_start(NULL, no_alloc, no_read))); }

static const struct {
  const char *name;
  void (*run)(void);
} sections[] = {{"null", null_stream},       {"closing", closing_handles}, {"mmsg", recvmmsg_after_close},
                {"exit", exit_after_close},  {"idle", idle_restart},       {"check", check_restart},
                {"prepare", prepare_restart}, {"works", many_works}};

/* usage: libuv_semantics [SECTION...]: the named sections, or all. */
int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  /* Which uv_read_start this program calls (stderr: not part of the log):
   * the runner checks the transparent mode was really in use. */
  int (*rs)(uv_stream_t *, uv_alloc_cb, uv_read_cb) = uv_read_start;
  void *p;
  memcpy(&p, &rs, sizeof p);
  Dl_info info;
  if (dladdr(p, &info))
    fprintf(stderr, "uv_read_start is %s from %s\n", info.dli_sname ? info.dli_sname : "?", info.dli_fname);
  loop = uv_default_loop();
  for (size_t k = 0; k < sizeof sections / sizeof sections[0]; k++) {
    int wanted = argc < 2;
    for (int a = 1; a < argc; a++) wanted |= strcmp(argv[a], sections[k].name) == 0;
    if (wanted) sections[k].run();
  }
  LOG("loop close: %s", err(uv_loop_close(loop)));
  return 0;
}
