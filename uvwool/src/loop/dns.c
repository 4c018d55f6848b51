/* getaddrinfo, getnameinfo and random: one-shot requests run on the thread
 * pool whose completion callback runs on the loop (asyncio done-callbacks,
 * docs/semantics.md §5). One capture per request, keyed by the request, entered
 * around the callback and released after it (or kept with a new capture if
 * the callback resubmits the same request).
 *
 * A NULL callback makes libuv run the request synchronously on the calling
 * thread, already in the current context: the wrapper only calls libuv.
 * libuv reports submission failures through the return value and never runs
 * the callback then, so a refused request keeps no capture. */
#include "loop_internal.h"

/* The trampolines only read req->loop before the callback: the callback may
 * free the request. */

static void getaddrinfo_trampoline(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(req->loop, req, UVW__SLOT_MAIN, &L, "uv_getaddrinfo_cb");
  if (r == NULL) {
    /* Nobody will see res: free it rather than leak it. */
    uv_freeaddrinfo(res);
    return;
  }
  uvw__frame_t f;
  uvw__oneshot_begin(&f, L, r);
  ((uv_getaddrinfo_cb)r->cb)(req, status, res);
  uvw__reg_end(&f, L, r);
}

int uvw_getaddrinfo(uv_loop_t *loop, uv_getaddrinfo_t *req, uv_getaddrinfo_cb getaddrinfo_cb, const char *node,
                    const char *service, const struct addrinfo *hints) {
  if (getaddrinfo_cb == NULL) return uv_getaddrinfo(loop, req, NULL, node, service, hints);
  uvw__loop_t *L;
  uvw__reg_t *r;
  int rc = uvw__register(loop, req, UVW__SLOT_MAIN, (uvw__fn)getaddrinfo_cb, NULL, &L, &r);
  if (rc != 0) return rc;
  return uvw__registered(L, r, uv_getaddrinfo(loop, req, getaddrinfo_trampoline, node, service, hints));
}

static void getnameinfo_trampoline(uv_getnameinfo_t *req, int status, const char *hostname, const char *service) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(req->loop, req, UVW__SLOT_MAIN, &L, "uv_getnameinfo_cb");
  if (r == NULL) return;
  uvw__frame_t f;
  uvw__oneshot_begin(&f, L, r);
  ((uv_getnameinfo_cb)r->cb)(req, status, hostname, service);
  uvw__reg_end(&f, L, r);
}

int uvw_getnameinfo(uv_loop_t *loop, uv_getnameinfo_t *req, uv_getnameinfo_cb getnameinfo_cb,
                    const struct sockaddr *addr, int flags) {
  if (getnameinfo_cb == NULL) return uv_getnameinfo(loop, req, NULL, addr, flags);
  uvw__loop_t *L;
  uvw__reg_t *r;
  int rc = uvw__register(loop, req, UVW__SLOT_MAIN, (uvw__fn)getnameinfo_cb, NULL, &L, &r);
  if (rc != 0) return rc;
  return uvw__registered(L, r, uv_getnameinfo(loop, req, getnameinfo_trampoline, addr, flags));
}

static void random_trampoline(uv_random_t *req, int status, void *buf, size_t buflen) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(req->loop, req, UVW__SLOT_MAIN, &L, "uv_random_cb");
  if (r == NULL) return;
  uvw__frame_t f;
  uvw__oneshot_begin(&f, L, r);
  ((uv_random_cb)r->cb)(req, status, buf, buflen);
  uvw__reg_end(&f, L, r);
}

int uvw_random(uv_loop_t *loop, uv_random_t *req, void *buf, size_t buflen, unsigned flags, uv_random_cb cb) {
  if (cb == NULL) return uv_random(loop, req, buf, buflen, flags, NULL);
  uvw__loop_t *L;
  uvw__reg_t *r;
  int rc = uvw__register(loop, req, UVW__SLOT_MAIN, (uvw__fn)cb, NULL, &L, &r);
  if (rc != 0) return rc;
  return uvw__registered(L, r, uv_random(loop, req, buf, buflen, flags, random_trampoline));
}
