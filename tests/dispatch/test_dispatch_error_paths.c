/* Every public function of the loop layer and of dispatch, called on its
 * error paths (NULLs, bad values, wrong state: a closing handle, a closed or
 * lost connection, a one-shot dispatch driven as a stream, a call already
 * answered), returns a negative code and leaves a detail record naming the
 * function or the argument. A uvw_ wrapper names libuv's function too. */
#include <sys/un.h>
#include <unistd.h>

#include "error_paths.h"
#include "testutil.h"
#include "uvwool/dispatch.h"
#include "uvwool/loop.h"

static uv_loop_t loop;
static uv_timer_t closing_timer;      /* uv_close'd, its close not run yet */
static uv_tcp_t tcp;                  /* initialised, never opened */
static uv_pipe_t pipe_h;              /* initialised, never bound */
static uv_udp_t udp;
static uv_idle_t idle;
static uv_prepare_t prepare;
static uv_check_t check;
static uv_signal_t sig;
static uv_fs_event_t fs_event;
static uv_fs_poll_t orphan_fs_poll;   /* zeroed: no loop */
static uv_poll_t orphan_poll;         /* zeroed: no loop */
static uv_async_t async_h;
static struct sockaddr_un not_inet = {.sun_family = AF_UNIX};
static uv_buf_t one_buf;
static char byte;

static void noop_timer(uv_timer_t *h) { (void)h; }
static void noop_close(uv_handle_t *h) { (void)h; }
static void noop_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  (void)h, (void)n;
  *b = uv_buf_init(&byte, 1);
}
static void noop_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) { (void)s, (void)n, (void)b; }
static void noop_udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *a, unsigned f) {
  (void)h, (void)n, (void)b, (void)a, (void)f;
}
static void noop_status(uv_write_t *r, int s) { (void)r, (void)s; }
static void noop_shutdown(uv_shutdown_t *r, int s) { (void)r, (void)s; }
static void noop_connect(uv_connect_t *r, int s) { (void)r, (void)s; }
static void noop_connection(uv_stream_t *s, int st) { (void)s, (void)st; }
static void noop_send(uv_udp_send_t *r, int s) { (void)r, (void)s; }
static void noop_signal(uv_signal_t *h, int s) { (void)h, (void)s; }
static void noop_fs_event(uv_fs_event_t *h, const char *f, int e, int s) { (void)h, (void)f, (void)e, (void)s; }
static void noop_fs_poll(uv_fs_poll_t *h, int s, const uv_stat_t *a, const uv_stat_t *b) {
  (void)h, (void)s, (void)a, (void)b;
}
static void noop_poll(uv_poll_t *h, int s, int e) { (void)h, (void)s, (void)e; }
static void noop_after_work(uv_work_t *r, int s) { (void)r, (void)s; }
static void noop_getaddrinfo(uv_getaddrinfo_t *r, int s, struct addrinfo *a) { (void)r, (void)s, (void)a; }
static void noop_getnameinfo(uv_getnameinfo_t *r, int s, const char *h, const char *sv) {
  (void)r, (void)s, (void)h, (void)sv;
}
static void noop_random(uv_random_t *r, int s, void *b, size_t n) { (void)r, (void)s, (void)b, (void)n; }
static void noop_async(uv_async_t *h) { (void)h; }
static void noop_fs(uv_fs_t *r) { (void)r; }
static void noop_soon(void *arg) { (void)arg; }
static void noop_task(uvw_task_t *t, void *arg) { (void)t, (void)arg; }

/* ---- the loop layer ---------------------------------------------------------- */

static int l_loop_attach(void) { return uvw_loop_attach(NULL); }
static int l_loop_close_busy(void) { return uvw_loop_close(&loop); } /* handles still open */
static int l_call_soon(void) { return uvw_loop_call_soon(NULL, noop_soon, NULL); }
static int l_call_soon_threadsafe(void) { return uvw_loop_call_soon_threadsafe(NULL, noop_soon, NULL); }
static int l_to_thread(void) {
  static uv_work_t req;
  return uvw_to_thread(&loop, &req, NULL, noop_after_work);
}
static int l_queue_work(void) {
  static uv_work_t req;
  return uvw_queue_work(&loop, &req, NULL, noop_after_work);
}
static int l_task_spawn(void) { return uvw_task_spawn(NULL, noop_task, NULL, NULL, NULL); }
static int l_task_create(void) { return uvw_task_create(NULL, noop_task, NULL, NULL, NULL); }
static int l_loop_set_task_factory(void) { return uvw_loop_set_task_factory(NULL, NULL); }
static int l_loop_set_task_factory_no_create(void) {
  static uvw_task_factory_t no_create;
  return uvw_loop_set_task_factory(&loop, &no_create);
}
static int l_install_task_factory(void) { return uvw_loop_install_task_factory(NULL); }
static int l_timer_start_closing(void) { return uvw_timer_start(&closing_timer, noop_timer, 1, 0); }
static int l_timer_start_null_cb(void) { return uvw_timer_start(&closing_timer, NULL, 1, 0); }
static int l_idle_start(void) { return uvw_idle_start(&idle, NULL); }
static int l_prepare_start(void) { return uvw_prepare_start(&prepare, NULL); }
static int l_check_start(void) { return uvw_check_start(&check, NULL); }
static int l_shutdown(void) {
  static uv_shutdown_t req;
  return uvw_shutdown(&req, (uv_stream_t *)&tcp, noop_shutdown);
}
static int l_listen(void) { return uvw_listen((uv_stream_t *)&pipe_h, 1, noop_connection); }
static int l_read_start(void) { return uvw_read_start((uv_stream_t *)&tcp, noop_alloc, noop_read); }
static int l_write(void) {
  static uv_write_t req;
  return uvw_write(&req, (uv_stream_t *)&tcp, &one_buf, 1, noop_status);
}
static int l_write2(void) {
  static uv_write_t req;
  return uvw_write2(&req, (uv_stream_t *)&tcp, &one_buf, 1, NULL, noop_status);
}
static int l_tcp_close_reset(void) { return uvw_tcp_close_reset(&tcp, noop_close); }
static int l_tcp_connect(void) {
  static uv_connect_t req;
  return uvw_tcp_connect(&req, &tcp, (const struct sockaddr *)&not_inet, noop_connect);
}
static int l_udp_send(void) {
  static uv_udp_send_t req;
  return uvw_udp_send(&req, &udp, &one_buf, 1, NULL, noop_send); /* unconnected: EDESTADDRREQ */
}
static int l_udp_recv_start(void) { return uvw_udp_recv_start(&udp, NULL, noop_udp_recv); }
static int l_poll_start(void) { return uvw_poll_start(&orphan_poll, UV_READABLE, noop_poll); }
static int l_signal_start(void) { return uvw_signal_start(&sig, noop_signal, 0); }
static int l_signal_start_oneshot(void) { return uvw_signal_start_oneshot(&sig, noop_signal, -1); }
static int l_fs_event_start(void) { return uvw_fs_event_start(&fs_event, noop_fs_event, "/no/such/uvwool/dir", 0); }
static int l_fs_poll_start(void) { return uvw_fs_poll_start(&orphan_fs_poll, noop_fs_poll, "/", 10); }
static int l_thread_create(void) {
  uv_thread_t tid;
  return uvw_thread_create(&tid, NULL, NULL);
}
static int l_thread_create_ex(void) {
  uv_thread_t tid;
  uv_thread_options_t o = {.flags = UV_THREAD_NO_FLAGS};
  return uvw_thread_create_ex(&tid, &o, NULL, NULL);
}
static int l_spawn(void) {
  static uv_process_t p;
  return uvw_spawn(&loop, &p, NULL);
}
static int l_getaddrinfo(void) {
  static uv_getaddrinfo_t req;
  return uvw_getaddrinfo(&loop, &req, noop_getaddrinfo, NULL, NULL, NULL);
}
static int l_getnameinfo(void) {
  static uv_getnameinfo_t req;
  return uvw_getnameinfo(&loop, &req, noop_getnameinfo, (const struct sockaddr *)&not_inet, 0);
}
static int l_random(void) {
  static uv_random_t req;
  static char buf[4];
  return uvw_random(&loop, &req, buf, sizeof(buf), 1, noop_random);
}
static int l_async_init(void) { return uvw_async_init(NULL, &async_h, noop_async); }
/* uv_fs_*: a NULL request is UV_EINVAL; once with a callback (the capture
 * path), once without (the synchronous path the wrapper forwards). */
static int l_fs_close_sync(void) { return uvw_fs_close(&loop, NULL, 0, NULL); }
static int l_fs_open_sync(void) { return uvw_fs_open(&loop, NULL, "/", 0, 0, NULL); }

#define FS_CASE(name, ...) \
  static int l_fs_##name(void) { return uvw_fs_##name(&loop, NULL, __VA_ARGS__, noop_fs); }
FS_CASE(close, 0)
FS_CASE(open, "/", 0, 0)
FS_CASE(read, 0, &one_buf, 1, 0)
FS_CASE(unlink, "/x")
FS_CASE(write, 0, &one_buf, 1, 0)
FS_CASE(copyfile, "/a", "/b", 0)
FS_CASE(mkdir, "/a", 0)
FS_CASE(mkdtemp, "/tmp/xXXXXXX")
FS_CASE(mkstemp, "/tmp/xXXXXXX")
FS_CASE(rmdir, "/a")
FS_CASE(scandir, "/", 0)
FS_CASE(opendir, "/")
FS_CASE(readdir, NULL)
FS_CASE(closedir, NULL)
FS_CASE(stat, "/")
FS_CASE(fstat, 0)
FS_CASE(rename, "/a", "/b")
FS_CASE(fsync, 0)
FS_CASE(fdatasync, 0)
FS_CASE(ftruncate, 0, 0)
FS_CASE(sendfile, 0, 0, 0, 0)
FS_CASE(access, "/", 0)
FS_CASE(chmod, "/", 0)
FS_CASE(utime, "/", 0, 0)
FS_CASE(futime, 0, 0, 0)
FS_CASE(lutime, "/", 0, 0)
FS_CASE(lstat, "/")
FS_CASE(link, "/a", "/b")
FS_CASE(symlink, "/a", "/b", 0)
FS_CASE(readlink, "/")
FS_CASE(realpath, "/")
FS_CASE(fchmod, 0, 0)
FS_CASE(chown, "/", 0, 0)
FS_CASE(fchown, 0, 0, 0)
FS_CASE(lchown, "/", 0, 0)
FS_CASE(statfs, "/")

/* ---- dispatch ---------------------------------------------------------------- */

static uvw_worker_t *worker;
static uvw_conn_t *closing_conn, *dead_conn, *pending_conn;
static uvw_dispatch_t *oneshot; /* a pending one-shot dispatch */
static uvw_error_t *an_error;
static uvw_value_t *const no_args[1];

static void routine(uvw_call_t *call, void *arg) {
  (void)arg;
  uvw_call_return(call, NULL);
}
static void reply_cb(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg) { (void)d, (void)r, (void)arg; }

static int d_worker_new(void) {
  uvw_worker_t *w;
  return uvw_worker_open(NULL, &w);
}
static int d_worker_register_null_fn(void) { return uvw_worker_register(worker, "r2", NULL, NULL, 0); }
static int d_worker_register_empty(void) { return uvw_worker_register(worker, "", routine, NULL, 0); }
static int d_worker_register_twice(void) { return uvw_worker_register(worker, "r", routine, NULL, 0); }
static int d_worker_listen(void) { return uvw_worker_listen(worker, "smoke-signals:here"); }
static int d_worker_listen_null(void) { return uvw_worker_listen(NULL, "pipe:/tmp/x"); }
static int d_worker_listen_remote(void) { return uvw_worker_listen(worker, "tcp:10.1.2.3:0"); }
static int d_worker_listen_bad_fd(void) { return uvw_worker_listen(worker, "fd:x"); }
static int d_worker_listen_not_socket(void) { return uvw_worker_listen(worker, "fd:0"); }
static int d_worker_socket_mode(void) { return uvw_worker_set_socket_mode(worker, 01000); }
static int d_worker_socket_group(void) { return uvw_worker_set_socket_group(worker, -5); }
static int d_worker_allow_uid(void) { return uvw_worker_allow_uid(NULL, 1); }
static int d_worker_allow_gid(void) { return uvw_worker_allow_gid(NULL, 1); }
static int d_worker_allow_remote(void) { return uvw_worker_set_allow_remote(NULL, 1); }
static int d_worker_set_ref(void) { return uvw_worker_set_ref(NULL, 0); }
static int d_worker_address(void) {
  char buf[64];
  return uvw_worker_address(worker, 7, buf, sizeof(buf));
}
static int d_worker_set_limits(void) {
  uvw_worker_limits_t l;
  uvw_worker_limits_default(&l);
  l.max_chains = 65;
  return uvw_worker_set_limits(worker, &l);
}
static int d_worker_set_limits_null(void) { return uvw_worker_set_limits(worker, NULL); }
static int d_worker_set_limits_delta(void) {
  uvw_worker_limits_t l;
  uvw_worker_limits_default(&l);
  l.delta_chains = 1025;
  return uvw_worker_set_limits(worker, &l);
}
static int d_worker_delta(void) { return uvw_worker_set_delta_manifests(NULL, 0); }
static int d_conn_delta_null(void) { return uvw_conn_set_delta_manifests(NULL, 0); }
static int d_conn_delta_lost(void) { return uvw_conn_set_delta_manifests(dead_conn, 0); }
static int d_worker_get_limits(void) { return uvw_worker_get_limits(worker, NULL); }
static int d_worker_stats(void) { return uvw_worker_stats(NULL, NULL); }
static int d_call_yield(void) { return uvw_call_yield(NULL, NULL); }
static int d_call_return(void) { return uvw_call_return(NULL, NULL); }
static int d_call_raise(void) { return uvw_call_raise(NULL, NULL); }
static int d_conn_open(void) {
  uvw_conn_t *c;
  return uvw_conn_open(&loop, "tcp:not-an-address", &c);
}
static int d_conn_open_null(void) {
  uvw_conn_t *c;
  return uvw_conn_open(NULL, "pipe:/tmp/x", &c);
}
static int d_dispatch_closed(void) {
  return uvw_conn_dispatch(closing_conn, "r", no_args, 0, NULL, reply_cb, NULL, NULL);
}
static int d_dispatch_lost(void) { return uvw_conn_dispatch(dead_conn, "r", no_args, 0, NULL, reply_cb, NULL, NULL); }
static int d_dispatch_null_cb(void) { return uvw_conn_dispatch(pending_conn, "r", no_args, 0, NULL, NULL, NULL, NULL); }
static int d_dispatch_null_routine(void) {
  return uvw_conn_dispatch(pending_conn, NULL, no_args, 0, NULL, reply_cb, NULL, NULL);
}
static int d_dispatch_cancel_null(void) { return uvw_dispatch_cancel(NULL); }
static int d_stream_open(void) {
  uvw_dispatch_t *d;
  return uvw_conn_dispatch_stream(NULL, "r", no_args, 0, NULL, &d);
}
static int d_stream_open_closed(void) {
  uvw_dispatch_t *d;
  return uvw_conn_dispatch_stream(closing_conn, "r", no_args, 0, NULL, &d);
}
static int d_stream_next(void) { return uvw_dispatch_next(oneshot, reply_cb, NULL); }
static int d_stream_send(void) { return uvw_dispatch_send(oneshot, NULL, reply_cb, NULL); }
static int d_stream_throw(void) { return uvw_dispatch_throw(oneshot, an_error, reply_cb, NULL); }
static int d_stream_throw_null(void) { return uvw_dispatch_throw(oneshot, NULL, reply_cb, NULL); }
static int d_pool_open(void) {
  uvw_pool_t *p;
  return uvw_pool_open(&loop, NULL, 0, &p);
}
static int d_pool_next(void) { return EP_PTR(uvw_pool_next(NULL)); }

#define C(fn, call) {#fn, call, NULL}
#define CN(fn, call, names) {#fn, call, names}
static const ep_case_t cases[] = {
    C(uvw_loop_attach, l_loop_attach),
    C(uvw_loop_close, l_loop_close_busy),
    C(uvw_loop_call_soon, l_call_soon),
    C(uvw_loop_call_soon_threadsafe, l_call_soon_threadsafe),
    CN(uvw_to_thread, l_to_thread, "uv_queue_work"),
    C(uvw_queue_work, l_queue_work),
    C(uvw_task_spawn, l_task_spawn),
    C(uvw_task_create, l_task_create),
    C(uvw_loop_set_task_factory, l_loop_set_task_factory),
    CN(uvw_loop_set_task_factory, l_loop_set_task_factory_no_create, "factory->create"),
    C(uvw_loop_install_task_factory, l_install_task_factory),
    C(uvw_timer_start, l_timer_start_closing),
    CN(uvw_timer_start, l_timer_start_null_cb, "uv_timer_start"),
    C(uvw_idle_start, l_idle_start),
    C(uvw_prepare_start, l_prepare_start),
    C(uvw_check_start, l_check_start),
    C(uvw_shutdown, l_shutdown),
    C(uvw_listen, l_listen),
    C(uvw_read_start, l_read_start),
    C(uvw_write, l_write),
    C(uvw_write2, l_write2),
    C(uvw_tcp_close_reset, l_tcp_close_reset),
    C(uvw_tcp_connect, l_tcp_connect),
    C(uvw_udp_send, l_udp_send),
    C(uvw_udp_recv_start, l_udp_recv_start),
    C(uvw_poll_start, l_poll_start),
    C(uvw_signal_start, l_signal_start),
    C(uvw_signal_start_oneshot, l_signal_start_oneshot),
    C(uvw_fs_event_start, l_fs_event_start),
    C(uvw_fs_poll_start, l_fs_poll_start),
    C(uvw_thread_create, l_thread_create),
    C(uvw_thread_create_ex, l_thread_create_ex),
    C(uvw_spawn, l_spawn),
    C(uvw_getaddrinfo, l_getaddrinfo),
    C(uvw_getnameinfo, l_getnameinfo),
    C(uvw_random, l_random),
    C(uvw_async_init, l_async_init),
    CN(uvw_fs_close, l_fs_close_sync, "uv_fs_close"),
    CN(uvw_fs_open, l_fs_open_sync, "uv_fs_open"),
    C(uvw_fs_close, l_fs_close), C(uvw_fs_open, l_fs_open), C(uvw_fs_read, l_fs_read),
    C(uvw_fs_unlink, l_fs_unlink), C(uvw_fs_write, l_fs_write), C(uvw_fs_copyfile, l_fs_copyfile),
    C(uvw_fs_mkdir, l_fs_mkdir), C(uvw_fs_mkdtemp, l_fs_mkdtemp), C(uvw_fs_mkstemp, l_fs_mkstemp),
    C(uvw_fs_rmdir, l_fs_rmdir), C(uvw_fs_scandir, l_fs_scandir), C(uvw_fs_opendir, l_fs_opendir),
    C(uvw_fs_readdir, l_fs_readdir), C(uvw_fs_closedir, l_fs_closedir), C(uvw_fs_stat, l_fs_stat),
    C(uvw_fs_fstat, l_fs_fstat), C(uvw_fs_rename, l_fs_rename), C(uvw_fs_fsync, l_fs_fsync),
    C(uvw_fs_fdatasync, l_fs_fdatasync), C(uvw_fs_ftruncate, l_fs_ftruncate), C(uvw_fs_sendfile, l_fs_sendfile),
    C(uvw_fs_access, l_fs_access), C(uvw_fs_chmod, l_fs_chmod), C(uvw_fs_utime, l_fs_utime),
    C(uvw_fs_futime, l_fs_futime), C(uvw_fs_lutime, l_fs_lutime), C(uvw_fs_lstat, l_fs_lstat),
    C(uvw_fs_link, l_fs_link), C(uvw_fs_symlink, l_fs_symlink), C(uvw_fs_readlink, l_fs_readlink),
    C(uvw_fs_realpath, l_fs_realpath), C(uvw_fs_fchmod, l_fs_fchmod), C(uvw_fs_chown, l_fs_chown),
    C(uvw_fs_fchown, l_fs_fchown), C(uvw_fs_lchown, l_fs_lchown), C(uvw_fs_statfs, l_fs_statfs),
    C(uvw_worker_open, d_worker_new),
    CN(uvw_worker_register, d_worker_register_null_fn, "fn"),
    CN(uvw_worker_register, d_worker_register_empty, "name"),
    C(uvw_worker_register, d_worker_register_twice),
    CN(uvw_worker_listen, d_worker_listen, "address"),
    C(uvw_worker_listen, d_worker_listen_null),
    CN(uvw_worker_listen, d_worker_listen_remote, "loopback"),
    CN(uvw_worker_listen, d_worker_listen_bad_fd, "fd:x"),
    CN(uvw_worker_listen, d_worker_listen_not_socket, "listening"),
    CN(uvw_worker_set_socket_mode, d_worker_socket_mode, "mode"),
    CN(uvw_worker_set_socket_group, d_worker_socket_group, "gid"),
    C(uvw_worker_allow_uid, d_worker_allow_uid),
    C(uvw_worker_allow_gid, d_worker_allow_gid),
    C(uvw_worker_set_allow_remote, d_worker_allow_remote),
    C(uvw_worker_set_ref, d_worker_set_ref),
    C(uvw_worker_address, d_worker_address),
    CN(uvw_worker_set_limits, d_worker_set_limits, "max_chains"),
    CN(uvw_worker_set_limits, d_worker_set_limits_null, "limits"),
    CN(uvw_worker_set_limits, d_worker_set_limits_delta, "delta_chains"),
    C(uvw_worker_set_delta_manifests, d_worker_delta),
    CN(uvw_conn_set_delta_manifests, d_conn_delta_null, "conn"),
    CN(uvw_conn_set_delta_manifests, d_conn_delta_lost, "already up or lost"),
    CN(uvw_worker_get_limits, d_worker_get_limits, "out"),
    C(uvw_worker_stats, d_worker_stats),
    C(uvw_call_yield, d_call_yield),
    C(uvw_call_return, d_call_return),
    C(uvw_call_raise, d_call_raise),
    CN(uvw_conn_open, d_conn_open, "address"),
    C(uvw_conn_open, d_conn_open_null),
    CN(uvw_conn_dispatch, d_dispatch_closed, "closed"),
    CN(uvw_conn_dispatch, d_dispatch_lost, "lost"),
    CN(uvw_conn_dispatch, d_dispatch_null_cb, "cb"),
    CN(uvw_conn_dispatch, d_dispatch_null_routine, "routine"),
    C(uvw_dispatch_cancel, d_dispatch_cancel_null),
    C(uvw_conn_dispatch_stream, d_stream_open),
    CN(uvw_conn_dispatch_stream, d_stream_open_closed, "closed"),
    CN(uvw_dispatch_next, d_stream_next, "one-shot"),
    CN(uvw_dispatch_send, d_stream_send, "one-shot"),
    CN(uvw_dispatch_throw, d_stream_throw, "one-shot"),
    CN(uvw_dispatch_throw, d_stream_throw_null, "error"),
    C(uvw_pool_open, d_pool_open),
    C(uvw_pool_next, d_pool_next),
};

#define GETTER "a getter: returns a field or a NULL/0 default, never fails"
#define FLAG "an int flag or count, not a code: nothing to fail"
#define STOP "libuv's stop always returns 0 (the wrapper forwards and reports it if that changes)"
#define VOID "void, as libuv's: its errors reach the callback"
static const ep_allowed_t allowed[] = {
    {"uvw_debug_unwrapped", "a switch: returns its previous state, every int is a valid request"},
    {"uvw_loop_task_factory", GETTER},
    {"uvw_loop_task_factory_installed", FLAG},
    {"uvw_wrapper_table", GETTER},
    {"uvw_timer_stop", STOP},
    {"uvw_prepare_stop", STOP},
    {"uvw_check_stop", STOP},
    {"uvw_idle_stop", STOP},
    {"uvw_read_stop", STOP},
    {"uvw_udp_recv_stop", STOP},
    {"uvw_poll_stop", STOP},
    {"uvw_signal_stop", STOP},
    {"uvw_fs_event_stop", STOP},
    {"uvw_fs_poll_stop", STOP},
    {"uvw_pipe_connect", VOID},
    {"uvw_walk", "void, as libuv's uv_walk"},
    {"uvw_close", "void, as libuv's uv_close"},
    {"uvw_worker_on_error", "void; NULL removes the callback"},
    {"uvw_worker_set_dispatch_timeout", "void; 0 restores the default"},
    {"uvw_worker_limits_default", "void; fills a struct, NULL is a no-op"},
    {"uvw_worker_close", "void; closing cannot fail (the callback reports the end)"},
    {"uvw_call_routine", GETTER},
    {"uvw_call_arg_count", FLAG},
    {"uvw_call_arg", GETTER},
    {"uvw_call_step", GETTER},
    {"uvw_call_sent", GETTER},
    {"uvw_call_thrown", GETTER},
    {"uvw_call_dispatch_timeout", "an int flag: whether the Task carried a bound"},
    {"uvw_call_cancelled", FLAG},
    {"uvw_call_on_cancel", "void; NULL removes the callback"},
    {"uvw_call_loop", GETTER},
    {"uvw_call_set_data", "void; stores two pointers"},
    {"uvw_call_data", GETTER},
    {"uvw_conn_set_dispatch_timeout", "void; 0 restores the default"},
    {"uvw_conn_set_max_stubs", "void; 0 restores the default"},
    {"uvw_conn_set_ref", "void; a switch, every int is a valid request"},
    {"uvw_conn_is_dead", FLAG},
    {"uvw_conn_pending", FLAG},
    {"uvw_conn_close", "void; closing cannot fail (pending dispatches get UVW_ECANCELED)"},
    {"uvw_dispatch_done", FLAG},
    {"uvw_dispatch_close", "void; closing cannot fail"},
    {"uvw_pool_size", FLAG},
    {"uvw_pool_set_dispatch_timeout", "void; 0 restores the default"},
    {"uvw_pool_set_ref", "void; a switch, every int is a valid request"},
    {"uvw_pool_close", "void; closing cannot fail"},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void conn_closed(void *arg) { (void)arg; }

static void setup_state(void) {
  cr_assert_eq(uv_loop_init(&loop), 0);
  one_buf = uv_buf_init(&byte, 1);
  cr_assert_eq(uv_timer_init(&loop, &closing_timer), 0);
  uv_close((uv_handle_t *)&closing_timer, NULL);
  cr_assert_eq(uv_tcp_init(&loop, &tcp), 0);
  cr_assert_eq(uv_pipe_init(&loop, &pipe_h, 0), 0);
  cr_assert_eq(uv_udp_init(&loop, &udp), 0);
  cr_assert_eq(uv_idle_init(&loop, &idle), 0);
  cr_assert_eq(uv_prepare_init(&loop, &prepare), 0);
  cr_assert_eq(uv_check_init(&loop, &check), 0);
  cr_assert_eq(uv_signal_init(&loop, &sig), 0);
  cr_assert_eq(uv_fs_event_init(&loop, &fs_event), 0);
  cr_assert_eq(uvw_worker_open(&loop, &worker), 0);
  cr_assert_eq(uvw_worker_register(worker, "r", routine, NULL, 0), 0);
  /* No worker listens at these paths: the connects fail. */
  char addr[128];
  snprintf(addr, sizeof(addr), "pipe:/tmp/uvwool-ep-dead-%d.sock", (int)getpid());
  cr_assert_eq(uvw_conn_open(&loop, addr, &dead_conn), 0);
  for (int i = 0; i < 100 && !uvw_conn_is_dead(dead_conn); i++) uv_run(&loop, UV_RUN_ONCE);
  cr_assert(uvw_conn_is_dead(dead_conn));
  cr_assert_eq(uvw_conn_open(&loop, addr, &closing_conn), 0);
  uvw_conn_close(closing_conn, conn_closed, NULL);
  cr_assert_eq(uvw_conn_open(&loop, addr, &pending_conn), 0);
  cr_assert_eq(uvw_conn_dispatch(pending_conn, "r", no_args, 0, NULL, reply_cb, NULL, &oneshot), 0);
  an_error = uvw_error_new("ValueError", 0, "thrown");
}

static void close_one(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void teardown_state(void) {
  uvw_error_unref(an_error);
  uvw_conn_close(dead_conn, NULL, NULL);
  uvw_conn_close(pending_conn, NULL, NULL);
  uvw_worker_close(worker, NULL, NULL);
  uv_walk(&loop, close_one, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_expect_eq(uvw_loop_close(&loop), 0);
}

Test(error_paths, every_failing_loop_and_dispatch_call_leaves_a_detail_naming_it) {
  setup_state();
  ep_run_all(cases, N(cases));
  teardown_state();
}

Test(error_paths, every_exported_loop_and_dispatch_function_is_in_the_table_or_the_allow_list) {
  static const char *const headers[] = {"loop.h", "dispatch.h"};
  ep_check_coverage(headers, N(headers), cases, N(cases), allowed, N(allowed));
}

Test(error_paths, a_wrapper_failure_names_the_wrapper_and_the_libuv_function_and_code) {
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(uv_timer_init(&loop, &closing_timer), 0);
  uv_close((uv_handle_t *)&closing_timer, NULL);
  uvw_clear_error();
  cr_assert_eq(uvw_timer_start(&closing_timer, noop_timer, 1, 0), UV_EINVAL);
  const uvw_error_t *e = uvw_last_error();
  cr_assert(e);
  cr_expect_eq(uvw_error_kind(e), UVW_KIND_VALUE_ERROR);
  cr_expect_str_eq(uvw_error_field(e, "function"), "uvw_timer_start");
  cr_expect_str_eq(uvw_error_field(e, "libuv_function"), "uv_timer_start");
  cr_expect_str_eq(uvw_error_field(e, "libuv_error"), "EINVAL");
  cr_expect(strstr(uvw_error_message(e), "invalid argument"), "message: %s", uvw_error_message(e));
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_expect_eq(uvw_loop_close(&loop), 0);
}

Test(error_paths, a_successful_wrapper_call_leaves_the_last_error_alone) {
  cr_assert_eq(uv_loop_init(&loop), 0);
  uv_timer_t t;
  cr_assert_eq(uv_timer_init(&loop, &t), 0);
  uvw_clear_error();
  uvw_loop_call_soon(NULL, noop_soon, NULL); /* a failure to remember */
  const uvw_error_t *earlier = uvw_last_error();
  cr_assert_eq(uvw_timer_start(&t, noop_timer, 1, 0), 0);
  cr_assert_eq(uvw_timer_stop(&t), 0);
  cr_expect_eq(uvw_last_error(), earlier);
  uvw_close((uv_handle_t *)&t, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_expect_eq(uvw_loop_close(&loop), 0);
}

Test(error_paths, strerror_and_err_name_fall_back_to_libuv_for_libuv_codes) {
  cr_expect_str_eq(uvw_strerror(UV_EBUSY), uv_strerror(UV_EBUSY));
  cr_expect_str_eq(uvw_err_name(UV_EBUSY), "EBUSY");
  cr_expect_str_eq(uvw_strerror(UV_EOF), "end of file");
  cr_expect_str_eq(uvw_err_name(UV_EAI_NONAME), "EAI_NONAME");
  /* uvwool's own names win where the values are shared. */
  cr_expect_str_eq(uvw_err_name(UV_ENOMEM), "UVW_ENOMEM");
  cr_expect_str_eq(uvw_strerror(0), "success");
}

/* ---- answers in the wrong state, from inside real routines ------------------ */

static struct {
  int yield_rc, again_rc, answered, replies;
  char yield_detail[256], again_detail[256];
} ws;

static void keep_detail(char *buf, size_t len) {
  const uvw_error_t *e = uvw_last_error();
  snprintf(buf, len, "%s", e ? uvw_error_message(e) : "(no detail)");
}

static void oneshot_yields(uvw_call_t *call, void *arg) {
  (void)arg;
  uvw_clear_error();
  ws.yield_rc = uvw_call_yield(call, NULL);
  keep_detail(ws.yield_detail, sizeof(ws.yield_detail));
  uvw_call_return(call, NULL);
}

static void stream_answers_twice(uvw_call_t *call, void *arg) {
  (void)arg;
  if (ws.answered) { /* the THROW step of the close */
    uvw_call_return(call, NULL);
    return;
  }
  ws.answered = 1;
  cr_assert_eq(uvw_call_yield(call, NULL), 0);
  uvw_clear_error();
  ws.again_rc = uvw_call_return(call, NULL); /* the step was answered already */
  keep_detail(ws.again_detail, sizeof(ws.again_detail));
}

static void count_reply(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg) {
  (void)d, (void)r, (void)arg;
  ws.replies++;
}

Test(error_paths, answers_in_the_wrong_state_name_the_function_and_the_state) {
  cr_assert_eq(uv_loop_init(&loop), 0);
  uvw_worker_t *w;
  cr_assert_eq(uvw_worker_open(&loop, &w), 0);
  cr_assert_eq(uvw_worker_register(w, "oneshot_yields", oneshot_yields, NULL, 0), 0);
  cr_assert_eq(uvw_worker_register(w, "stream_answers_twice", stream_answers_twice, NULL, UVW_ROUTINE_STREAM), 0);
  char addr[128];
  snprintf(addr, sizeof(addr), "pipe:/tmp/uvwool-ep-live-%d.sock", (int)getpid());
  remove(addr + 5);
  cr_assert_eq(uvw_worker_listen(w, addr), 0);
  uvw_conn_t *c;
  cr_assert_eq(uvw_conn_open(&loop, addr, &c), 0);
  cr_assert_eq(uvw_conn_dispatch(c, "oneshot_yields", no_args, 0, NULL, count_reply, NULL, NULL), 0);
  uvw_dispatch_t *s;
  cr_assert_eq(uvw_conn_dispatch_stream(c, "stream_answers_twice", no_args, 0, NULL, &s), 0);
  cr_assert_eq(uvw_dispatch_next(s, count_reply, NULL), 0);
  for (int i = 0; i < 1000 && ws.replies < 2; i++) uv_run(&loop, UV_RUN_ONCE);
  cr_assert_eq(ws.replies, 2);
  cr_expect_eq(ws.yield_rc, UVW_EINVAL);
  cr_expect(strstr(ws.yield_detail, "uvw_call_yield") && strstr(ws.yield_detail, "one-shot"), "detail: %s",
            ws.yield_detail);
  cr_expect_eq(ws.again_rc, UVW_EINVAL);
  cr_expect(strstr(ws.again_detail, "uvw_call_return") && strstr(ws.again_detail, "no step is waiting"),
            "detail: %s", ws.again_detail);
  uvw_dispatch_close(s);
  uvw_conn_close(c, NULL, NULL);
  uvw_worker_close(w, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  remove(addr + 5);
  cr_expect_eq(uvw_loop_close(&loop), 0);
}
