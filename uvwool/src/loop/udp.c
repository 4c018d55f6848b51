/* UDP: udp_recv_start is asyncio's add_reader (one capture per start, reused
 * by every datagram and its alloc callback, released by uvw_udp_recv_stop or
 * close); udp_send is a done-callback, keyed by the request and released
 * after it (docs/semantics.md §5).
 *
 * A closing handle is left to libuv untouched, capturing nothing: libuv
 * 1.44 accepts recv_start and send on a closing handle, and a capture
 * committed after the close released the handle's records would never be
 * released. */
#include "loop_internal.h"

static void recv_trampoline(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                            unsigned flags) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(handle->loop, handle, UVW__SLOT_MAIN, &L, "uv_udp_recv_cb");
  if (r == NULL) return;
  uvw__frame_t f;
  uvw__reg_begin(&f, L, r);
  ((uv_udp_recv_cb)r->cb)(handle, nread, buf, addr, flags);
  uvw__reg_end(&f, L, r);
}

int uvw_udp_recv_start(uv_udp_t *handle, uv_alloc_cb alloc_cb, uv_udp_recv_cb recv_cb) {
  if (alloc_cb == NULL || recv_cb == NULL || uv_is_closing((uv_handle_t *)handle))
    return uv_udp_recv_start(handle, alloc_cb, recv_cb);
  uvw__loop_t *L;
  uvw__reg_t *r;
  int rc = uvw__register(handle->loop, handle, UVW__SLOT_MAIN, (uvw__fn)recv_cb, (uvw__fn)alloc_cb, &L, &r);
  if (rc != 0) return rc;
  /* UV_EALREADY (already receiving) discards only the new capture. */
  return uvw__registered(L, r, uv_udp_recv_start(handle, uvw__alloc_trampoline, recv_trampoline));
}

int uvw_udp_recv_stop(uv_udp_t *handle) {
  uvw__loop_t *L = uvw__loop_find(handle->loop);
  if (L) uvw__reg_stop(L, handle, UVW__SLOT_MAIN);
  return uv_udp_recv_stop(handle);
}

/* The callback may free or resubmit its request: nothing after it touches req. */
static void send_trampoline(uv_udp_send_t *req, int status) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(req->handle->loop, req, UVW__SLOT_MAIN, &L, "uv_udp_send_cb");
  if (r == NULL) return;
  uvw__frame_t f;
  uvw__oneshot_begin(&f, L, r);
  ((uv_udp_send_cb)r->cb)(req, status);
  uvw__reg_end(&f, L, r);
}

int uvw_udp_send(uv_udp_send_t *req, uv_udp_t *handle, const uv_buf_t bufs[], unsigned int nbufs,
                 const struct sockaddr *addr, uv_udp_send_cb send_cb) {
  if (send_cb == NULL || uv_is_closing((uv_handle_t *)handle))
    return uv_udp_send(req, handle, bufs, nbufs, addr, send_cb);
  uvw__loop_t *L;
  uvw__reg_t *r;
  int rc = uvw__register(handle->loop, req, UVW__SLOT_MAIN, (uvw__fn)send_cb, NULL, &L, &r);
  if (rc != 0) return rc;
  return uvw__registered(L, r, uv_udp_send(req, handle, bufs, nbufs, addr, send_trampoline));
}
