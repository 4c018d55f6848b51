/* libuv failures as uvwool details: every uvw_ wrapper returns libuv's code
 * unchanged and, when it is a failure, leaves a detail record naming the
 * wrapper, the libuv function, the code's name and libuv's message, as every
 * other failing uvwool call does. This file also gives the core libuv's
 * names for the codes outside uvwool's own list. */
#include "error.h"
#include "loop_internal.h"

/* libuv's own list, so the names are exactly those uv_err_name gives, but
 * static: uv_err_name allocates (and leaks) for a code it does not know. */
static const char *libuv_text(int code, int want_name) {
  switch (code) {
#define UVW__LIBUV_TEXT(name, message) \
  case UV_##name:                      \
    return want_name ? #name : message;
    UV_ERRNO_MAP(UVW__LIBUV_TEXT)
#undef UVW__LIBUV_TEXT
    default:
      return NULL;
  }
}

/* Installed when the library loads, before any thread can ask for a name.
 * This object is linked in with any wrapper (they all report through it), so
 * a static link that uses the loop layer gets the names too. */
__attribute__((constructor)) static void install_libuv_text(void) { uvw__error_set_text_fallback(libuv_text); }

static uvw_error_kind_t kind_of(int rc) {
  if (rc == UV_EINVAL) return UVW_KIND_VALUE_ERROR;
  if (rc == UV_ENOMEM) return UVW_KIND_MEMORY_ERROR;
  return UVW_KIND_RUNTIME_ERROR;
}

int uvw__uv_failed(int rc, const char *wrapper, const char *libuv_fn) {
  if (rc >= 0) return rc;
  /* Nearly every wrapper is uvw_<x> around uv_<x>: the libuv name follows. */
  const char *base = libuv_fn ? libuv_fn + (sizeof("uv_") - 1) : wrapper + (sizeof("uvw_") - 1);
  const char *name = libuv_text(rc, 1), *message = libuv_text(rc, 0);
  if (name == NULL) name = "UNKNOWN", message = "unknown error";
  uvw_error_t *e = uvw__error_set(rc, kind_of(rc), "%s: uv_%s failed: %s (%s)", wrapper, base, name, message);
  uvw__error_field(e, "function", "%s", wrapper);
  uvw__error_field(e, "libuv_function", "uv_%s", base);
  uvw__error_field(e, "libuv_error", "%s", name);
  return rc;
}

int uvw__no_loop(const char *wrapper) {
  uvw_error_t *e = uvw__error_set(UV_EINVAL, UVW_KIND_VALUE_ERROR, "%s: the loop is NULL (handle not initialised?)",
                                  wrapper);
  uvw__error_field(e, "function", "%s", wrapper);
  return UV_EINVAL;
}
