/* Preload mode: libuvwool-preload.so, loaded with LD_PRELOAD, defines every
 * function of the wrapper table (and extras.def) so a dynamically linked
 * program's uv_* calls, and those of any library it loads (Lua's luv), come
 * here first and go on to uvwool's wrapper uvw_<name> in libuvwool.so.
 *
 * - One core: the preload links the shared libuvwool.so, the same object a
 *   program using uvwool links, so variables, thread state and per-loop
 *   state exist once.
 * - No recursion: before forwarding to uvwool, libuvwool.so's own references
 *   to these functions are bound to the real libuv (bind.c).
 * - Until that binding succeeded (a constructor of another library calling
 *   libuv before ours ran, or an unsupported platform) every call goes
 *   unchanged to the real libuv: no propagation, libuv's behaviour intact.
 *   If even libuv cannot be found, the call fails with UV_ENOSYS (said once
 *   on stderr) instead of jumping to NULL. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "extras.def"
#include "preload_internal.h"
#include "signatures.h"
#include "uvwool/loop.h"
#include "wrappers.def"

#define UVWI_EXPORT __attribute__((visibility("default")))

/* One index per interposed function, from the same lists. */
#define UVW_WRAPPER(family, name, kind) UVWI_IDX_##name,
#define UVWI_EXTRA(name) UVWI_IDX_##name,
enum { UVW_WRAPPER_LIST UVWI_EXTRA_LIST UVWI_COUNT };
#undef UVW_WRAPPER
#undef UVWI_EXTRA
#define UVW_WRAPPER(family, name, kind) "uv_" #name,
#define UVWI_EXTRA(name) "uv_" #name,
static const char *const names[UVWI_COUNT] = {UVW_WRAPPER_LIST UVWI_EXTRA_LIST};
#undef UVW_WRAPPER
#undef UVWI_EXTRA

static _Atomic(void *) reals[UVWI_COUNT];
static atomic_int bound;     /* libuvwool.so talks to the real libuv: forward to uvwool */
static atomic_flag missing_said = ATOMIC_FLAG_INIT;
static pthread_once_t bind_once = PTHREAD_ONCE_INIT;

void *uvwi_real_lookup(const char *name) {
  void *fn = dlsym(RTLD_NEXT, name);
  if (fn) return fn;
  /* Lua's require loads luv.so, and libuv with it, with local scope: not in
   * RTLD_NEXT's search list. The handle is kept: it pins libuv. */
  void *uv = dlopen("libuv.so.1", RTLD_LAZY | RTLD_NOLOAD);
  return uv ? dlsym(uv, name) : NULL;
}

/* The real function (cached; racing threads store the same pointer). */
static void *real(int idx) {
  void *fn = atomic_load_explicit(&reals[idx], memory_order_acquire);
  if (fn == NULL) {
    fn = uvwi_real_lookup(names[idx]);
    if (fn)
      atomic_store_explicit(&reals[idx], fn, memory_order_release);
    else if (!atomic_flag_test_and_set(&missing_said))
      fprintf(stderr, "uvwool-preload: %s not found (is libuv loaded?); failing with UV_ENOSYS\n", names[idx]);
  }
  return fn;
}

static void bind_now(void) {
  void *fns[UVWI_COUNT];
  for (int i = 0; i < UVWI_COUNT; i++)
    if ((fns[i] = real(i)) == NULL) return; /* libuv not there yet: retried never, stay transparent */
  char why[256];
  if (uvwi_bind_uvwool(names, fns, UVWI_COUNT, why, sizeof why) != 0) {
    fprintf(stderr, "uvwool-preload: context propagation disabled: %s\n", why);
    return;
  }
  atomic_store_explicit(&bound, 1, memory_order_release);
}

static inline int use_uvwool(void) {
  if (__builtin_expect(atomic_load_explicit(&bound, memory_order_acquire), 1)) return 1;
  pthread_once(&bind_once, bind_now);
  return atomic_load_explicit(&bound, memory_order_acquire);
}

/* Bind at load time, while the process is (normally) single-threaded;
 * use_uvwool() covers calls made before this constructor ran. */
__attribute__((constructor)) static void preload_init(void) { pthread_once(&bind_once, bind_now); }

#define UVWI_PRELOAD_INT(name, params, args)                 \
  UVWI_EXPORT int uv_##name params {                         \
    if (use_uvwool()) return uvw_##name args;                \
    int(*fn) params;                                         \
    void *p = real(UVWI_IDX_##name);                         \
    memcpy(&fn, &p, sizeof fn); /* object to function pointer, as dlsym */ \
    return fn ? fn args : UV_ENOSYS;                         \
  }
#define UVWI_PRELOAD_VOID(name, params, args)                \
  UVWI_EXPORT void uv_##name params {                        \
    if (use_uvwool()) {                                      \
      uvw_##name args;                                       \
      return;                                                \
    }                                                        \
    void(*fn) params;                                        \
    void *p = real(UVWI_IDX_##name);                         \
    memcpy(&fn, &p, sizeof fn);                              \
    if (fn) fn args;                                         \
  }
#define UVWI_PRELOAD(ret, name, params, args) UVWI_PRELOAD_##ret(name, params, args)

#define UVW_WRAPPER(family, name, kind) UVWI_SIG_##name(UVWI_PRELOAD)
#define UVWI_EXTRA(name) UVWI_SIG_##name(UVWI_PRELOAD)
UVW_WRAPPER_LIST
UVWI_EXTRA_LIST
