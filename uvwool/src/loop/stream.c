/* Streams (tcp, pipe, tty): asyncio's add_reader for read_start and listen,
 * done-callbacks for write, write2, shutdown and connect (docs/semantics.md §5).
 *
 * read_start and listen are multi-shot: one capture per start, reused by
 * every read (and its alloc callback) or every connection, released by
 * uvw_read_stop or close. Requests are one-shot, keyed by the request
 * pointer and released after their callback; a stream's close makes libuv
 * call pending request callbacks with UV_ECANCELED, which still find their
 * records. uvw_tcp_close_reset is a close: it captures for its close
 * callback, and the stream's captures go when that has run (handle.c).
 *
 * Every wrapper leaves a closing handle to libuv untouched, capturing
 * nothing: libuv accepts some calls on a closing handle (tcp_connect opens a
 * new socket), and a capture committed after the close released the
 * handle's records would never be released. */
#include "loop_internal.h"

/* libuv lets one stream both listen and read (uv_tcp_open / uv_pipe_open on
 * a listening socket), so listen has its own slot (UVW__SLOT_LISTEN): a
 * read_start never replaces the connection callback with a read callback. */

/* A NULL stream is libuv's to judge (uv_read_start returns UV_EINVAL, others
 * crash as they do without uvwool): the wrappers never touch it first. */
static int closing(uv_stream_t *stream) { return stream == NULL || uv_is_closing((uv_handle_t *)stream); }

/* ---- reads ------------------------------------------------------------------ */

static void read_trampoline(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(stream->loop, stream, UVW__SLOT_MAIN, &L, "uv_read_cb");
  if (r == NULL) return;
  uvw__frame_t f;
  uvw__reg_begin(&f, L, r);
  ((uv_read_cb)r->cb)(stream, nread, buf);
  uvw__reg_end(&f, L, r);
}

int uvw_read_start(uv_stream_t *stream, uv_alloc_cb alloc_cb, uv_read_cb read_cb) {
  if (alloc_cb == NULL || read_cb == NULL || closing(stream)) return UVW__UV(uv_read_start(stream, alloc_cb, read_cb));
  uvw__loop_t *L;
  uvw__reg_t *r;
  int rc = uvw__register(stream->loop, stream, UVW__SLOT_MAIN, (uvw__fn)read_cb, (uvw__fn)alloc_cb, &L, &r);
  if (rc != 0) return rc;
  /* UV_EALREADY (already reading) discards only the new capture. */
  return uvw__registered(L, r, uv_read_start(stream, uvw__alloc_trampoline, read_trampoline));
}

int uvw_read_stop(uv_stream_t *stream) {
  if (stream == NULL) return UVW__UV(uv_read_stop(stream));
  uvw__loop_t *L = uvw__loop_find(stream->loop);
  if (L) uvw__reg_stop(L, stream, UVW__SLOT_MAIN);
  return UVW__UV(uv_read_stop(stream));
}

/* ---- listen ----------------------------------------------------------------- */

/* Each connection callback runs in a fork of the listen capture of its own
 * (asyncio's start_server runs each client in a task of its own): what it
 * sets, and what the reads and writes it registers capture, belong to that
 * connection alone, on a chain of its own when the capture is armed. The
 * fork is the callback's: registrations made inside hold references. */
static void connection_trampoline(uv_stream_t *server, int status) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(server->loop, server, UVW__SLOT_LISTEN, &L, "uv_connection_cb");
  if (r == NULL) return;
  uvw_context_t *fork = r->ctx ? uvw_context_fork(r->ctx, UVW_PROPAGATE_FORK) : NULL;
  uvw__frame_t f;
  r->busy++;
  r->fresh = 0;
  /* Without memory for the fork the callback still runs, in the capture
   * itself, rather than being lost. */
  uvw__frame_begin(&f, L, fork ? fork : r->ctx, r->task);
  ((uv_connection_cb)r->cb)(server, status);
  uvw__reg_end(&f, L, r);
  uvw_context_unref(fork);
}

int uvw_listen(uv_stream_t *stream, int backlog, uv_connection_cb cb) {
  if (cb == NULL || closing(stream)) return UVW__UV(uv_listen(stream, backlog, cb));
  uvw__loop_t *L;
  uvw__reg_t *r;
  int rc = uvw__register(stream->loop, stream, UVW__SLOT_LISTEN, (uvw__fn)cb, NULL, &L, &r);
  if (rc != 0) return rc;
  return uvw__registered(L, r, uv_listen(stream, backlog, connection_trampoline));
}

/* ---- one-shot requests -------------------------------------------------------- */

/* The callback may free or resubmit its request: nothing after it touches req. */
static void write_trampoline(uv_write_t *req, int status) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(req->handle->loop, req, UVW__SLOT_MAIN, &L, "uv_write_cb");
  if (r == NULL) return;
  uvw__frame_t f;
  uvw__oneshot_begin(&f, L, r);
  ((uv_write_cb)r->cb)(req, status);
  uvw__reg_end(&f, L, r);
}

int uvw_write2(uv_write_t *req, uv_stream_t *handle, const uv_buf_t bufs[], unsigned int nbufs,
               uv_stream_t *send_handle, uv_write_cb cb) {
  if (cb == NULL || closing(handle)) return UVW__UV(uv_write2(req, handle, bufs, nbufs, send_handle, cb));
  uvw__loop_t *L;
  uvw__reg_t *r;
  int rc = uvw__register(handle->loop, req, UVW__SLOT_MAIN, (uvw__fn)cb, NULL, &L, &r);
  if (rc != 0) return rc;
  return uvw__registered(L, r, uv_write2(req, handle, bufs, nbufs, send_handle, write_trampoline));
}

int uvw_write(uv_write_t *req, uv_stream_t *handle, const uv_buf_t bufs[], unsigned int nbufs, uv_write_cb cb) {
  if (cb == NULL || closing(handle)) return UVW__UV(uv_write(req, handle, bufs, nbufs, cb));
  uvw__loop_t *L;
  uvw__reg_t *r;
  int rc = uvw__register(handle->loop, req, UVW__SLOT_MAIN, (uvw__fn)cb, NULL, &L, &r);
  if (rc != 0) return rc;
  return uvw__registered(L, r, uv_write(req, handle, bufs, nbufs, write_trampoline));
}

static void shutdown_trampoline(uv_shutdown_t *req, int status) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(req->handle->loop, req, UVW__SLOT_MAIN, &L, "uv_shutdown_cb");
  if (r == NULL) return;
  uvw__frame_t f;
  uvw__oneshot_begin(&f, L, r);
  ((uv_shutdown_cb)r->cb)(req, status);
  uvw__reg_end(&f, L, r);
}

int uvw_shutdown(uv_shutdown_t *req, uv_stream_t *handle, uv_shutdown_cb cb) {
  if (cb == NULL || closing(handle)) return UVW__UV(uv_shutdown(req, handle, cb));
  uvw__loop_t *L;
  uvw__reg_t *r;
  int rc = uvw__register(handle->loop, req, UVW__SLOT_MAIN, (uvw__fn)cb, NULL, &L, &r);
  if (rc != 0) return rc;
  return uvw__registered(L, r, uv_shutdown(req, handle, shutdown_trampoline));
}

static void connect_trampoline(uv_connect_t *req, int status) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(req->handle->loop, req, UVW__SLOT_MAIN, &L, "uv_connect_cb");
  if (r == NULL) return;
  uvw__frame_t f;
  uvw__oneshot_begin(&f, L, r);
  ((uv_connect_cb)r->cb)(req, status);
  uvw__reg_end(&f, L, r);
}

int uvw_tcp_connect(uv_connect_t *req, uv_tcp_t *handle, const struct sockaddr *addr, uv_connect_cb cb) {
  if (cb == NULL || closing((uv_stream_t *)handle)) return UVW__UV(uv_tcp_connect(req, handle, addr, cb));
  uvw__loop_t *L;
  uvw__reg_t *r;
  int rc = uvw__register(handle->loop, req, UVW__SLOT_MAIN, (uvw__fn)cb, NULL, &L, &r);
  if (rc != 0) return rc;
  return uvw__registered(L, r, uv_tcp_connect(req, handle, addr, connect_trampoline));
}

void uvw_pipe_connect(uv_connect_t *req, uv_pipe_t *handle, const char *name, uv_connect_cb cb) {
  uvw__loop_t *L;
  uvw__reg_t *r;
  /* uv_pipe_connect cannot fail (errors reach the callback), and neither may
   * its wrapper: without memory for the capture it connects uncaptured. */
  if (cb == NULL || closing((uv_stream_t *)handle) ||
      uvw__register(handle->loop, req, UVW__SLOT_MAIN, (uvw__fn)cb, NULL, &L, &r) != 0) {
    uv_pipe_connect(req, handle, name, cb);
    return;
  }
  uv_pipe_connect(req, handle, name, connect_trampoline);
  uvw__reg_commit(L, r);
}

/* ---- close with reset ----------------------------------------------------------- */

int uvw_tcp_close_reset(uv_tcp_t *handle, uv_close_cb close_cb) {
  uvw__loop_t *L;
  uvw__reg_t *r;
  int rc;
  /* Like uvw_close, a reset is not refused for want of memory for the
   * capture: it closes uncaptured, releasing the stream's records at once. */
  if (closing((uv_stream_t *)handle) || !uvw__close_prepare((uv_handle_t *)handle, close_cb, &L, &r)) {
    rc = UVW__UV(uv_tcp_close_reset(handle, close_cb));
    /* Only a reset libuv accepted closes the handle: a refused one (UV_EINVAL
     * while shutting down, a setsockopt error) leaves its reads reading. */
    if (rc == 0) uvw__handle_release((uv_handle_t *)handle);
    return rc;
  }
  rc = uvw__registered(L, r, uv_tcp_close_reset(handle, uvw__close_trampoline));
  if (rc == 0) uvw__handle_stop((uv_handle_t *)handle);
  return rc;
}
