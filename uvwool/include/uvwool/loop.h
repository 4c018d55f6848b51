/* uvwool loop layer: the libuv plugin.
 *
 * Every libuv function that registers a callback has a wrapper with the same
 * signature named uvw_<name without uv_>: convert code by changing a prefix.
 * A wrapper captures the current context (and task) at registration and
 * enters it around the callback, restoring the previous context after
 * (docs/semantics.md §5): one capture per multi-shot registration, reused by all its
 * events; one per request for one-shot callbacks; released on stop, close or
 * completion. handle->data and req->data stay the caller's, and the callback
 * the caller passed is the one that runs.
 *
 * All wrappers of one loop must be called on the thread running that loop
 * (libuv's own rule). The loop's uvwool state is created on first use and
 * freed by uvw_loop_close. */
#ifndef UVWOOL_LOOP_H
#define UVWOOL_LOOP_H

#include <uv.h>

#include "uvwool/context.h"
#include "uvwool/task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- loops ------------------------------------------------------------------ */

/* Create the loop's uvwool state now (on the loop thread). Needed before
 * another thread calls uvw_loop_call_soon_threadsafe; wrappers attach lazily.
 * Returns 0 or UVW_ENOMEM / a libuv error from uv_async_init. */
int uvw_loop_attach(uv_loop_t *loop);
/* Release the loop's uvwool state (closing its internal handles, which needs
 * one more turn of the loop: uvw_loop_close runs it), then uv_loop_close.
 * Returns uv_loop_close's result; on UV_EBUSY the state is kept. */
int uvw_loop_close(uv_loop_t *loop);

/* ---- call-soon -------------------------------------------------------------- */

typedef void (*uvw_soon_cb)(void *arg);
/* Run cb(arg) on the loop's next iteration, in the context current now.
 * Loop thread only. 0, UVW_ENOMEM or UVW_EINVAL. */
int uvw_loop_call_soon(uv_loop_t *loop, uvw_soon_cb cb, void *arg);
/* From any thread: run cb(arg) on the loop thread soon, in the context of the
 * *sending* thread (a copy of it, so a foreign thread's armed chain trips the
 * guard on the loop, as asyncio's call_soon_threadsafe does). The loop must
 * be attached (uvw_loop_attach) first. 0, UVW_ENOMEM or UVW_EINVAL. */
int uvw_loop_call_soon_threadsafe(uv_loop_t *loop, uvw_soon_cb cb, void *arg);

/* ---- threads ---------------------------------------------------------------- */

/* Like uvw_queue_work, but work_cb runs in a detached fork of the current
 * context (new chain id, owned by the worker thread, variables without
 * UVW_PROPAGATE_THREAD left out): it sees the values, never trips the guard,
 * and its writes never flow back. after_work_cb runs on the loop in the
 * context captured at submission. */
int uvw_to_thread(uv_loop_t *loop, uv_work_t *req, uv_work_cb work_cb, uv_after_work_cb after_work_cb);

/* ---- tasks ------------------------------------------------------------------ */

/* Loop tasks. The task type and what every task has (current, ref/unref,
 * finished, id, context) are in uvwool/task.h, with the runtime tasks of
 * language bindings. */
typedef void (*uvw_task_body_cb)(uvw_task_t *task, void *arg);
typedef void (*uvw_task_done_cb)(uvw_task_t *task, void *arg);

typedef struct uvw_task_options_s {
  /* Run the task in this context instead of a fork of the current one
   * (asyncio's create_task(context=...)). A context already driving a live
   * task is refused with ChainContention kind "create_task". */
  uvw_context_t *context;
  /* Called on the loop after the task finished, in the task's context with
   * no task current: always from a later step of the loop (its call-soon
   * queue), never inside the uvw_ call or at the end of the callback that
   * released the task's last registration (libuv's rule for uv_close). Not
   * called for a task whose loop closes first (uvw_loop_close). */
  uvw_task_done_cb done_cb;
  void *done_arg;
} uvw_task_options_t;

/* Spawn fn(task, arg) on the loop's next iteration, through the loop's task
 * factory. The task runs in a fork of the current context (copy-on-fork: new
 * chain id, values inherited, pending resets dropped; variables without
 * UVW_PROPAGATE_FORK left out) with the task current. Callbacks it registers
 * carry the task; it finishes when fn has returned and every registration
 * made under it has completed, stopped or closed. opts may be NULL. *out
 * (may be NULL) receives a new reference. 0, UVW_EINVAL (loop or fn NULL),
 * UVW_ENOMEM, UVW_ECONTENTION (opts->context, kind "create_task") or a
 * libuv error starting the loop's call-soon handle. Loop thread only. */
int uvw_task_spawn(uv_loop_t *loop, uvw_task_body_cb fn, void *arg, const uvw_task_options_t *opts, uvw_task_t **out);
/* Create a task directly, bypassing the factory chain (asyncio.Task(...)
 * rather than loop.create_task): what a factory at the bottom of the chain
 * calls. Same arguments and behaviour as uvw_task_spawn otherwise. */
int uvw_task_create(uv_loop_t *loop, uvw_task_body_cb fn, void *arg, const uvw_task_options_t *opts, uvw_task_t **out);

/* ---- the task factory ------------------------------------------------------- */

/* Spawning is routed through a per-loop factory chain. A factory that wraps
 * another keeps it in `inner` and should delegate to it. uvwool installs
 * its own factory the first time a chain is armed in a callback of the loop
 * (or on uvw_loop_install_task_factory), wrapping whatever was installed. A later
 * factory that drops uvwool's (no inner path back to it) is reported as
 * TaskFactoryDisplaced at the next set/reset/mount on that loop. */
typedef struct uvw_task_factory_s uvw_task_factory_t;
struct uvw_task_factory_s {
  int (*create)(uvw_task_factory_t *self, uv_loop_t *loop, uvw_task_body_cb fn, void *arg,
                const uvw_task_options_t *opts, uvw_task_t **out);
  uvw_task_factory_t *inner;
  void *data;
};
/* Install `factory` as the loop's top factory (borrowed: it must outlive the
 * loop's use of it). NULL removes every factory. */
int uvw_loop_set_task_factory(uv_loop_t *loop, uvw_task_factory_t *factory);
/* The loop's top factory, or NULL. */
uvw_task_factory_t *uvw_loop_task_factory(uv_loop_t *loop);
/* Install uvwool's factory on the loop (idempotent; recognised when buried
 * under factories that kept the inner pointer). */
int uvw_loop_install_task_factory(uv_loop_t *loop);
/* Non-zero if uvwool's factory is reachable from the loop's top factory. */
int uvw_loop_task_factory_installed(uv_loop_t *loop);

/* ---- the wrapper table ------------------------------------------------------ */

/* One row per wrapped libuv function: the single source of truth behind the
 * explicit API, the docs and the transparent modes. */
typedef enum uvw_wrapper_kind_e {
  UVW_WRAPPER_MULTI,   /* multi-shot registration: one capture reused by every event */
  UVW_WRAPPER_ONESHOT, /* one capture per request, released after its callback */
  UVW_WRAPPER_STOP,    /* releases a multi-shot capture */
  UVW_WRAPPER_CLOSE,   /* releases every capture of a handle, captures for the close callback */
  UVW_WRAPPER_WORK,    /* uv_queue_work: work callback off-loop in the captured context */
  UVW_WRAPPER_THREAD,  /* thread creation: the thread runs in a detached fork */
  UVW_WRAPPER_SYNC     /* the callback runs during the call: the context is already current */
} uvw_wrapper_kind_t;

typedef struct uvw_wrapper_s {
  const char *family;     /* "timer", "fs", ... (one source file each) */
  const char *libuv_name; /* "uv_timer_start" */
  const char *name;       /* "uvw_timer_start" */
  uvw_wrapper_kind_t kind;
  void (*wrapper)(void);  /* the uvw_ function, cast */
  void (*libuv)(void);    /* the uv_ function it forwards to, cast */
} uvw_wrapper_t;

/* The table and its length. Static storage. */
const uvw_wrapper_t *uvw_wrapper_table(size_t *count);

/* ---- the wrappers (same signatures as libuv 1.44) ----------------------------
 * The *_stop wrappers are not registrations but release the capture. */

/* ---- timers ---- */

int uvw_timer_start(uv_timer_t* handle, uv_timer_cb cb, uint64_t timeout, uint64_t repeat);
int uvw_timer_stop(uv_timer_t* handle);

/* ---- idle / check / prepare ---- */

int uvw_prepare_start(uv_prepare_t* prepare, uv_prepare_cb cb);
int uvw_prepare_stop(uv_prepare_t* prepare);
int uvw_check_start(uv_check_t* check, uv_check_cb cb);
int uvw_check_stop(uv_check_t* check);
int uvw_idle_start(uv_idle_t* idle, uv_idle_cb cb);
int uvw_idle_stop(uv_idle_t* idle);

/* ---- streams: tcp, pipe, tty ---- */

int uvw_shutdown(uv_shutdown_t* req, uv_stream_t* handle, uv_shutdown_cb cb);
int uvw_listen(uv_stream_t* stream, int backlog, uv_connection_cb cb);
int uvw_read_start(uv_stream_t*, uv_alloc_cb alloc_cb, uv_read_cb read_cb);
int uvw_read_stop(uv_stream_t*);
int uvw_write(uv_write_t* req, uv_stream_t* handle, const uv_buf_t bufs[], unsigned int nbufs, uv_write_cb cb);
int uvw_write2(uv_write_t* req, uv_stream_t* handle, const uv_buf_t bufs[], unsigned int nbufs, uv_stream_t* send_handle, uv_write_cb cb);
int uvw_tcp_close_reset(uv_tcp_t* handle, uv_close_cb close_cb);
int uvw_tcp_connect(uv_connect_t* req, uv_tcp_t* handle, const struct sockaddr* addr, uv_connect_cb cb);
void uvw_pipe_connect(uv_connect_t* req, uv_pipe_t* handle, const char* name, uv_connect_cb cb);

/* ---- udp ---- */

int uvw_udp_send(uv_udp_send_t* req, uv_udp_t* handle, const uv_buf_t bufs[], unsigned int nbufs, const struct sockaddr* addr, uv_udp_send_cb send_cb);
int uvw_udp_recv_start(uv_udp_t* handle, uv_alloc_cb alloc_cb, uv_udp_recv_cb recv_cb);
int uvw_udp_recv_stop(uv_udp_t* handle);

/* ---- poll ---- */

int uvw_poll_start(uv_poll_t* handle, int events, uv_poll_cb cb);
int uvw_poll_stop(uv_poll_t* handle);

/* ---- signals ---- */

int uvw_signal_start(uv_signal_t* handle, uv_signal_cb signal_cb, int signum);
int uvw_signal_start_oneshot(uv_signal_t* handle, uv_signal_cb signal_cb, int signum);
int uvw_signal_stop(uv_signal_t* handle);

/* ---- file system requests ---- */

int uvw_fs_close(uv_loop_t* loop, uv_fs_t* req, uv_file file, uv_fs_cb cb);
int uvw_fs_open(uv_loop_t* loop, uv_fs_t* req, const char* path, int flags, int mode, uv_fs_cb cb);
int uvw_fs_read(uv_loop_t* loop, uv_fs_t* req, uv_file file, const uv_buf_t bufs[], unsigned int nbufs, int64_t offset, uv_fs_cb cb);
int uvw_fs_unlink(uv_loop_t* loop, uv_fs_t* req, const char* path, uv_fs_cb cb);
int uvw_fs_write(uv_loop_t* loop, uv_fs_t* req, uv_file file, const uv_buf_t bufs[], unsigned int nbufs, int64_t offset, uv_fs_cb cb);
int uvw_fs_copyfile(uv_loop_t* loop, uv_fs_t* req, const char* path, const char* new_path, int flags, uv_fs_cb cb);
int uvw_fs_mkdir(uv_loop_t* loop, uv_fs_t* req, const char* path, int mode, uv_fs_cb cb);
int uvw_fs_mkdtemp(uv_loop_t* loop, uv_fs_t* req, const char* tpl, uv_fs_cb cb);
int uvw_fs_mkstemp(uv_loop_t* loop, uv_fs_t* req, const char* tpl, uv_fs_cb cb);
int uvw_fs_rmdir(uv_loop_t* loop, uv_fs_t* req, const char* path, uv_fs_cb cb);
int uvw_fs_scandir(uv_loop_t* loop, uv_fs_t* req, const char* path, int flags, uv_fs_cb cb);
int uvw_fs_opendir(uv_loop_t* loop, uv_fs_t* req, const char* path, uv_fs_cb cb);
int uvw_fs_readdir(uv_loop_t* loop, uv_fs_t* req, uv_dir_t* dir, uv_fs_cb cb);
int uvw_fs_closedir(uv_loop_t* loop, uv_fs_t* req, uv_dir_t* dir, uv_fs_cb cb);
int uvw_fs_stat(uv_loop_t* loop, uv_fs_t* req, const char* path, uv_fs_cb cb);
int uvw_fs_fstat(uv_loop_t* loop, uv_fs_t* req, uv_file file, uv_fs_cb cb);
int uvw_fs_rename(uv_loop_t* loop, uv_fs_t* req, const char* path, const char* new_path, uv_fs_cb cb);
int uvw_fs_fsync(uv_loop_t* loop, uv_fs_t* req, uv_file file, uv_fs_cb cb);
int uvw_fs_fdatasync(uv_loop_t* loop, uv_fs_t* req, uv_file file, uv_fs_cb cb);
int uvw_fs_ftruncate(uv_loop_t* loop, uv_fs_t* req, uv_file file, int64_t offset, uv_fs_cb cb);
int uvw_fs_sendfile(uv_loop_t* loop, uv_fs_t* req, uv_file out_fd, uv_file in_fd, int64_t in_offset, size_t length, uv_fs_cb cb);
int uvw_fs_access(uv_loop_t* loop, uv_fs_t* req, const char* path, int mode, uv_fs_cb cb);
int uvw_fs_chmod(uv_loop_t* loop, uv_fs_t* req, const char* path, int mode, uv_fs_cb cb);
int uvw_fs_utime(uv_loop_t* loop, uv_fs_t* req, const char* path, double atime, double mtime, uv_fs_cb cb);
int uvw_fs_futime(uv_loop_t* loop, uv_fs_t* req, uv_file file, double atime, double mtime, uv_fs_cb cb);
int uvw_fs_lutime(uv_loop_t* loop, uv_fs_t* req, const char* path, double atime, double mtime, uv_fs_cb cb);
int uvw_fs_lstat(uv_loop_t* loop, uv_fs_t* req, const char* path, uv_fs_cb cb);
int uvw_fs_link(uv_loop_t* loop, uv_fs_t* req, const char* path, const char* new_path, uv_fs_cb cb);
int uvw_fs_symlink(uv_loop_t* loop, uv_fs_t* req, const char* path, const char* new_path, int flags, uv_fs_cb cb);
int uvw_fs_readlink(uv_loop_t* loop, uv_fs_t* req, const char* path, uv_fs_cb cb);
int uvw_fs_realpath(uv_loop_t* loop, uv_fs_t* req, const char* path, uv_fs_cb cb);
int uvw_fs_fchmod(uv_loop_t* loop, uv_fs_t* req, uv_file file, int mode, uv_fs_cb cb);
int uvw_fs_chown(uv_loop_t* loop, uv_fs_t* req, const char* path, uv_uid_t uid, uv_gid_t gid, uv_fs_cb cb);
int uvw_fs_fchown(uv_loop_t* loop, uv_fs_t* req, uv_file file, uv_uid_t uid, uv_gid_t gid, uv_fs_cb cb);
int uvw_fs_lchown(uv_loop_t* loop, uv_fs_t* req, const char* path, uv_uid_t uid, uv_gid_t gid, uv_fs_cb cb);
int uvw_fs_statfs(uv_loop_t* loop, uv_fs_t* req, const char* path, uv_fs_cb cb);

/* ---- fs events and fs polling ---- */

int uvw_fs_poll_start(uv_fs_poll_t* handle, uv_fs_poll_cb poll_cb, const char* path, unsigned int interval);
int uvw_fs_poll_stop(uv_fs_poll_t* handle);
int uvw_fs_event_start(uv_fs_event_t* handle, uv_fs_event_cb cb, const char* path, unsigned int flags);
int uvw_fs_event_stop(uv_fs_event_t* handle);

/* ---- work queue and threads ---- */

int uvw_queue_work(uv_loop_t* loop, uv_work_t* req, uv_work_cb work_cb, uv_after_work_cb after_work_cb);
int uvw_thread_create(uv_thread_t* tid, uv_thread_cb entry, void* arg);
int uvw_thread_create_ex(uv_thread_t* tid, const uv_thread_options_t* params, uv_thread_cb entry, void* arg);

/* ---- processes ---- */

int uvw_spawn(uv_loop_t* loop, uv_process_t* handle, const uv_process_options_t* options);

/* ---- dns and random ---- */

int uvw_getaddrinfo(uv_loop_t* loop, uv_getaddrinfo_t* req, uv_getaddrinfo_cb getaddrinfo_cb, const char* node, const char* service, const struct addrinfo* hints);
int uvw_getnameinfo(uv_loop_t* loop, uv_getnameinfo_t* req, uv_getnameinfo_cb getnameinfo_cb, const struct sockaddr* addr, int flags);
int uvw_random(uv_loop_t* loop, uv_random_t* req, void *buf, size_t buflen, unsigned flags, uv_random_cb cb);

/* ---- async ---- */

int uvw_async_init(uv_loop_t*, uv_async_t* async, uv_async_cb async_cb);

/* ---- handles ---- */

void uvw_walk(uv_loop_t* loop, uv_walk_cb walk_cb, void* arg);
void uvw_close(uv_handle_t* handle, uv_close_cb close_cb);

#ifdef __cplusplus
}
#endif
#endif
