/* Transparent-mode parity over the whole wrapper table: for every row of
 * uvw_wrapper_table(), the wrapper and raw libuv get the same input (a NULL
 * request or handle where libuv answers it with a code, a closing handle)
 * and must give the same return code (raw libuv is called in the same
 * test, never hard-coded) and fire the same number of callbacks. Rows where
 * libuv itself crashes, asserts or misbehaves on such input are listed
 * with the reason; a table row neither covered nor listed fails the test. */
#include <string.h>

#include "looptest.h"

#include <criterion/parameterized.h>

LT_FIXTURE(parity_table)

/* ---- callbacks: each counts ------------------------------------------------ */

static int fired;
static void fs_cb(uv_fs_t *r) { (void)r, fired++; }
static void timer_cb(uv_timer_t *h) { (void)h, fired++; }
static void alloc_cb(uv_handle_t *h, size_t n, uv_buf_t *b) { (void)h, (void)n, *b = uv_buf_init(NULL, 0), fired++; }
static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b) { (void)s, (void)n, (void)b, fired++; }
static void connection_cb(uv_stream_t *s, int st) { (void)s, (void)st, fired++; }
static void shutdown_cb(uv_shutdown_t *r, int st) { (void)r, (void)st, fired++; }
static void write_cb(uv_write_t *r, int st) { (void)r, (void)st, fired++; }
static void close_cb(uv_handle_t *h) { (void)h, fired++; }
static void after_work_cb(uv_work_t *r, int st) { (void)r, (void)st, fired++; }
static void gai_cb(uv_getaddrinfo_t *r, int st, struct addrinfo *ai) { (void)r, (void)st, uv_freeaddrinfo(ai), fired++; }
static void gni_cb(uv_getnameinfo_t *r, int st, const char *h, const char *s) { (void)r, (void)st, (void)h, (void)s, fired++; }

static uv_buf_t buf;
static char bytes[8];

/* Runs the loop until nothing but the (unreferenced) watchdog is left. */
static void drain(void) {
  while (uv_run(&loop, UV_RUN_NOWAIT)) {
  }
}

/* ---- NULL request / handle ------------------------------------------------- */

/* null_<name>(wrapped): the call with the NULL argument, through the
 * wrapper or raw libuv. */
#define NULL_CASE(name, ...) \
  static int null_##name(int wrapped) { return wrapped ? uvw_##name(__VA_ARGS__) : uv_##name(__VA_ARGS__); }

NULL_CASE(fs_close, &loop, NULL, 0, fs_cb)
NULL_CASE(fs_open, &loop, NULL, "/nonexistent", 0, 0, fs_cb)
NULL_CASE(fs_read, &loop, NULL, 0, &buf, 1, 0, fs_cb)
NULL_CASE(fs_unlink, &loop, NULL, "/nonexistent", fs_cb)
NULL_CASE(fs_write, &loop, NULL, 0, &buf, 1, 0, fs_cb)
NULL_CASE(fs_copyfile, &loop, NULL, "/a", "/b", 0, fs_cb)
NULL_CASE(fs_mkdir, &loop, NULL, "/nonexistent", 0700, fs_cb)
NULL_CASE(fs_mkdtemp, &loop, NULL, "/tmp/x-XXXXXX", fs_cb)
NULL_CASE(fs_mkstemp, &loop, NULL, "/tmp/x-XXXXXX", fs_cb)
NULL_CASE(fs_rmdir, &loop, NULL, "/nonexistent", fs_cb)
NULL_CASE(fs_scandir, &loop, NULL, "/nonexistent", 0, fs_cb)
NULL_CASE(fs_opendir, &loop, NULL, "/nonexistent", fs_cb)
NULL_CASE(fs_readdir, &loop, NULL, NULL, fs_cb)
NULL_CASE(fs_closedir, &loop, NULL, NULL, fs_cb)
NULL_CASE(fs_stat, &loop, NULL, "/nonexistent", fs_cb)
NULL_CASE(fs_fstat, &loop, NULL, 0, fs_cb)
NULL_CASE(fs_rename, &loop, NULL, "/a", "/b", fs_cb)
NULL_CASE(fs_fsync, &loop, NULL, 0, fs_cb)
NULL_CASE(fs_fdatasync, &loop, NULL, 0, fs_cb)
NULL_CASE(fs_ftruncate, &loop, NULL, 0, 0, fs_cb)
NULL_CASE(fs_sendfile, &loop, NULL, 1, 0, 0, 0, fs_cb)
NULL_CASE(fs_access, &loop, NULL, "/nonexistent", 0, fs_cb)
NULL_CASE(fs_chmod, &loop, NULL, "/nonexistent", 0, fs_cb)
NULL_CASE(fs_utime, &loop, NULL, "/nonexistent", 0, 0, fs_cb)
NULL_CASE(fs_futime, &loop, NULL, 0, 0, 0, fs_cb)
NULL_CASE(fs_lutime, &loop, NULL, "/nonexistent", 0, 0, fs_cb)
NULL_CASE(fs_lstat, &loop, NULL, "/nonexistent", fs_cb)
NULL_CASE(fs_link, &loop, NULL, "/a", "/b", fs_cb)
NULL_CASE(fs_symlink, &loop, NULL, "/a", "/b", 0, fs_cb)
NULL_CASE(fs_readlink, &loop, NULL, "/nonexistent", fs_cb)
NULL_CASE(fs_realpath, &loop, NULL, "/nonexistent", fs_cb)
NULL_CASE(fs_fchmod, &loop, NULL, 0, 0, fs_cb)
NULL_CASE(fs_chown, &loop, NULL, "/nonexistent", 0, 0, fs_cb)
NULL_CASE(fs_fchown, &loop, NULL, 0, 0, 0, fs_cb)
NULL_CASE(fs_lchown, &loop, NULL, "/nonexistent", 0, 0, fs_cb)
NULL_CASE(fs_statfs, &loop, NULL, "/nonexistent", fs_cb)
NULL_CASE(read_start, NULL, alloc_cb, read_cb)
NULL_CASE(getaddrinfo, &loop, NULL, gai_cb, "localhost", NULL, NULL)
NULL_CASE(getnameinfo, &loop, NULL, gni_cb, NULL, 0)
/* uv_queue_work refuses a NULL work callback before it touches the request. */
static uv_work_t work_req;
NULL_CASE(queue_work, &loop, &work_req, NULL, after_work_cb)
/* A NULL callback makes uv_random synchronous (the request may be NULL
 * then); a NULL request with a callback crashes libuv. */
NULL_CASE(random, &loop, NULL, bytes, sizeof bytes, 0, NULL)

/* ---- closing handles ------------------------------------------------------- */

/* A handle of each kind, initialised and closed before the call. */
typedef union {
  uv_handle_t handle;
  uv_timer_t timer;
  uv_idle_t idle;
  uv_check_t check;
  uv_prepare_t prepare;
  uv_pipe_t pipe;
  uv_tcp_t tcp;
  uv_udp_t udp;
  uv_fs_poll_t fs_poll;
  uv_fs_event_t fs_event;
} any_handle_t;

typedef enum { H_TIMER, H_IDLE, H_CHECK, H_PREPARE, H_PIPE, H_TCP, H_UDP, H_FS_POLL, H_FS_EVENT } handle_kind_t;

static int init_handle(any_handle_t *h, handle_kind_t kind) {
  switch (kind) {
  case H_TIMER: return uv_timer_init(&loop, &h->timer);
  case H_IDLE: return uv_idle_init(&loop, &h->idle);
  case H_CHECK: return uv_check_init(&loop, &h->check);
  case H_PREPARE: return uv_prepare_init(&loop, &h->prepare);
  case H_PIPE: return uv_pipe_init(&loop, &h->pipe, 0);
  case H_TCP: return uv_tcp_init(&loop, &h->tcp);
  case H_UDP: return uv_udp_init(&loop, &h->udp);
  case H_FS_POLL: return uv_fs_poll_init(&loop, &h->fs_poll);
  case H_FS_EVENT: return uv_fs_event_init(&loop, &h->fs_event);
  }
  return UV_EINVAL;
}

/* closing_<name>(wrapped, h): the call on the closing handle h. */
#define CLOSING_CASE(name, kind, ...)                                  \
  static const handle_kind_t closing_kind_##name = kind;               \
  static int closing_##name(int wrapped, any_handle_t *h) {           \
    return wrapped ? uvw_##name(__VA_ARGS__) : uv_##name(__VA_ARGS__); \
  }

static uv_shutdown_t shutdown_req;
static uv_write_t write_req;
CLOSING_CASE(timer_start, H_TIMER, &h->timer, timer_cb, 0, 0)
CLOSING_CASE(timer_stop, H_TIMER, &h->timer)
CLOSING_CASE(idle_stop, H_IDLE, &h->idle)
CLOSING_CASE(check_stop, H_CHECK, &h->check)
CLOSING_CASE(prepare_stop, H_PREPARE, &h->prepare)
CLOSING_CASE(shutdown, H_PIPE, &shutdown_req, (uv_stream_t *)&h->pipe, shutdown_cb)
CLOSING_CASE(listen, H_PIPE, (uv_stream_t *)&h->pipe, 1, connection_cb)
CLOSING_CASE(read_start, H_PIPE, (uv_stream_t *)&h->pipe, alloc_cb, read_cb)
CLOSING_CASE(read_stop, H_PIPE, (uv_stream_t *)&h->pipe)
CLOSING_CASE(write, H_PIPE, &write_req, (uv_stream_t *)&h->pipe, &buf, 1, write_cb)
CLOSING_CASE(write2, H_PIPE, &write_req, (uv_stream_t *)&h->pipe, &buf, 1, NULL, write_cb)
CLOSING_CASE(tcp_close_reset, H_TCP, &h->tcp, close_cb)
CLOSING_CASE(udp_recv_stop, H_UDP, &h->udp)
CLOSING_CASE(fs_poll_stop, H_FS_POLL, &h->fs_poll)
CLOSING_CASE(fs_event_stop, H_FS_EVENT, &h->fs_event)

/* ---- the rows ---------------------------------------------------------------- */

typedef struct {
  const char *libuv_name;
  int (*null_case)(int wrapped);
  int (*closing_case)(int wrapped, any_handle_t *h);
  const handle_kind_t *closing_kind;
} row_case_t;

#define NULL_ROW(name) {"uv_" #name, null_##name, NULL, NULL}
#define CLOSING_ROW(name) {"uv_" #name, NULL, closing_##name, &closing_kind_##name}

static const row_case_t cases[] = {
  {"uv_fs_close", null_fs_close, NULL, NULL},
  {"uv_fs_open", null_fs_open, NULL, NULL},
  {"uv_fs_read", null_fs_read, NULL, NULL},
  {"uv_fs_unlink", null_fs_unlink, NULL, NULL},
  {"uv_fs_write", null_fs_write, NULL, NULL},
  {"uv_fs_copyfile", null_fs_copyfile, NULL, NULL},
  {"uv_fs_mkdir", null_fs_mkdir, NULL, NULL},
  {"uv_fs_mkdtemp", null_fs_mkdtemp, NULL, NULL},
  {"uv_fs_mkstemp", null_fs_mkstemp, NULL, NULL},
  {"uv_fs_rmdir", null_fs_rmdir, NULL, NULL},
  {"uv_fs_scandir", null_fs_scandir, NULL, NULL},
  {"uv_fs_opendir", null_fs_opendir, NULL, NULL},
  {"uv_fs_readdir", null_fs_readdir, NULL, NULL},
  {"uv_fs_closedir", null_fs_closedir, NULL, NULL},
  {"uv_fs_stat", null_fs_stat, NULL, NULL},
  {"uv_fs_fstat", null_fs_fstat, NULL, NULL},
  {"uv_fs_rename", null_fs_rename, NULL, NULL},
  {"uv_fs_fsync", null_fs_fsync, NULL, NULL},
  {"uv_fs_fdatasync", null_fs_fdatasync, NULL, NULL},
  {"uv_fs_ftruncate", null_fs_ftruncate, NULL, NULL},
  {"uv_fs_sendfile", null_fs_sendfile, NULL, NULL},
  {"uv_fs_access", null_fs_access, NULL, NULL},
  {"uv_fs_chmod", null_fs_chmod, NULL, NULL},
  {"uv_fs_utime", null_fs_utime, NULL, NULL},
  {"uv_fs_futime", null_fs_futime, NULL, NULL},
  {"uv_fs_lutime", null_fs_lutime, NULL, NULL},
  {"uv_fs_lstat", null_fs_lstat, NULL, NULL},
  {"uv_fs_link", null_fs_link, NULL, NULL},
  {"uv_fs_symlink", null_fs_symlink, NULL, NULL},
  {"uv_fs_readlink", null_fs_readlink, NULL, NULL},
  {"uv_fs_realpath", null_fs_realpath, NULL, NULL},
  {"uv_fs_fchmod", null_fs_fchmod, NULL, NULL},
  {"uv_fs_chown", null_fs_chown, NULL, NULL},
  {"uv_fs_fchown", null_fs_fchown, NULL, NULL},
  {"uv_fs_lchown", null_fs_lchown, NULL, NULL},
  {"uv_fs_statfs", null_fs_statfs, NULL, NULL},
  {"uv_read_start", null_read_start, closing_read_start, &closing_kind_read_start},
  NULL_ROW(getaddrinfo),
  NULL_ROW(getnameinfo),
  NULL_ROW(queue_work),
  NULL_ROW(random),
  CLOSING_ROW(timer_start),
  CLOSING_ROW(timer_stop),
  CLOSING_ROW(idle_stop),
  CLOSING_ROW(check_stop),
  CLOSING_ROW(prepare_stop),
  CLOSING_ROW(shutdown),
  CLOSING_ROW(listen),
  CLOSING_ROW(read_stop),
  CLOSING_ROW(write),
  CLOSING_ROW(write2),
  CLOSING_ROW(tcp_close_reset),
  CLOSING_ROW(udp_recv_stop),
  CLOSING_ROW(fs_poll_stop),
  CLOSING_ROW(fs_event_stop),
};

/* Rows libuv 1.44 cannot be given a NULL or closing argument on: what it
 * does instead. */
static const struct {
  const char *libuv_name, *why;
} not_covered[] = {
  {"uv_prepare_start", "no closing check: it queues the closing handle, used after its close; NULL crashes"},
  {"uv_check_start", "no closing check: it queues the closing handle, used after its close; NULL crashes"},
  {"uv_idle_start", "no closing check: it queues the closing handle, used after its close; NULL crashes"},
  {"uv_tcp_connect", "no closing check: opens a socket on the closing handle; NULL crashes"},
  {"uv_pipe_connect", "returns void; no closing check: opens a socket on the closing handle"},
  {"uv_udp_send", "no closing check: binds a socket on the closing handle; NULL crashes"},
  {"uv_udp_recv_start", "no closing check: binds a socket on the closing handle; NULL crashes"},
  {"uv_poll_start", "asserts the handle is not closing; NULL crashes"},
  {"uv_poll_stop", "asserts the handle is not closing; NULL crashes"},
  {"uv_signal_start", "asserts the handle is not closing; NULL crashes"},
  {"uv_signal_start_oneshot", "asserts the handle is not closing; NULL crashes"},
  {"uv_signal_stop", "asserts the handle is not closing; NULL crashes"},
  {"uv_fs_poll_start", "no closing check: starts a timer for the closing handle; NULL crashes"},
  {"uv_fs_event_start", "no closing check: adds an inotify watch for the closing handle; NULL crashes"},
  {"uv_thread_create", "no handle; a NULL thread id is written through (crash)"},
  {"uv_thread_create_ex", "no handle; a NULL thread id is written through (crash)"},
  {"uv_spawn", "initialises the handle itself (no closing state); NULL options crash"},
  {"uv_async_init", "an init: a closing handle cannot be initialised again; NULL crashes"},
  {"uv_walk", "takes no handle or request; a NULL loop crashes"},
  {"uv_close", "asserts the handle is not closing; NULL crashes"},
};

#define NCASES (sizeof cases / sizeof cases[0])
#define NLISTED (sizeof not_covered / sizeof not_covered[0])

static const row_case_t *find_case(const char *libuv_name) {
  for (size_t i = 0; i < NCASES; i++)
    if (strcmp(cases[i].libuv_name, libuv_name) == 0) return &cases[i];
  return NULL;
}

static const char *listed(const char *libuv_name) {
  for (size_t i = 0; i < NLISTED; i++)
    if (strcmp(not_covered[i].libuv_name, libuv_name) == 0) return not_covered[i].why;
  return NULL;
}

Test(parity_table, every_row_is_covered_or_listed_with_a_reason) {
  size_t n;
  const uvw_wrapper_t *table = uvw_wrapper_table(&n);
  cr_assert_gt(n, 0);
  (void)scheduler_id; /* the fixture's, unused here */
  for (size_t i = 0; i < n; i++) {
    const char *name = table[i].libuv_name, *why = listed(name);
    const row_case_t *c = find_case(name);
    cr_expect(c != NULL || why != NULL, "%s: neither covered by a parity case nor listed", name);
    cr_expect(c == NULL || why == NULL, "%s: both covered and listed", name);
    cr_expect(why == NULL || why[0] != '\0', "%s: listed without a reason", name);
  }
  /* Nothing stale: every case and listing names a row. */
  for (size_t k = 0; k < NCASES + NLISTED; k++) {
    const char *name = k < NCASES ? cases[k].libuv_name : not_covered[k - NCASES].libuv_name;
    size_t i = 0;
    while (i < n && strcmp(table[i].libuv_name, name) != 0) i++;
    cr_expect(i < n, "%s: not a row of the wrapper table", name);
  }
  finish();
}

/* One row's cases: raw libuv first, then the wrapper, on identical input. */
static void run_case(const row_case_t *c) {
  buf = uv_buf_init(bytes, sizeof bytes);
  if (c->null_case) {
    int rc[2], count[2];
    for (int w = 0; w < 2; w++) {
      fired = 0;
      rc[w] = c->null_case(w);
      drain();
      count[w] = fired;
    }
    cr_expect_eq(rc[1], rc[0], "%s with NULL: wrapper %d (%s), libuv %d (%s)", c->libuv_name, rc[1], uv_err_name(rc[1]),
                 rc[0], uv_err_name(rc[0]));
    cr_expect_eq(count[1], count[0], "%s with NULL: wrapper fired %d callbacks, libuv %d", c->libuv_name, count[1],
                 count[0]);
  }
  if (c->closing_case) {
    any_handle_t h[2];
    int rc[2], count[2];
    for (int w = 0; w < 2; w++) {
      memset(&h[w], 0, sizeof h[w]);
      cr_assert_eq(init_handle(&h[w], *c->closing_kind), 0, "%s: init", c->libuv_name);
      if (w)
        uvw_close(&h[w].handle, NULL);
      else
        uv_close(&h[w].handle, NULL);
      fired = 0;
      rc[w] = c->closing_case(w, &h[w]);
      drain();
      count[w] = fired;
    }
    cr_expect_eq(rc[1], rc[0], "%s on a closing handle: wrapper %d (%s), libuv %d (%s)", c->libuv_name, rc[1],
                 uv_err_name(rc[1]), rc[0], uv_err_name(rc[0]));
    cr_expect_eq(count[1], count[0], "%s on a closing handle: wrapper fired %d callbacks, libuv %d", c->libuv_name,
                 count[1], count[0]);
  }
}

/* One process per row (Criterion's parameterized tests): a row that
 * crashes fails alone, naming itself. The parameter is an index into
 * cases[]. */
ParameterizedTestParameters(parity_table, rows) {
  static size_t index[NCASES];
  for (size_t i = 0; i < NCASES; i++) index[i] = i;
  return cr_make_param_array(size_t, index, NCASES);
}

ParameterizedTest(size_t *i, parity_table, rows) {
  cr_log_info("%s", cases[*i].libuv_name);
  run_case(&cases[*i]);
  finish();
}
