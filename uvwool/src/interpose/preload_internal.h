/* Internals of the preload object (libuvwool-preload.so). */
#ifndef UVWI_PRELOAD_INTERNAL_H
#define UVWI_PRELOAD_INTERNAL_H

#include <stddef.h>

/* The real libuv function `name` ("uv_timer_start"), or NULL if libuv is not
 * loaded (yet) or lacks it. Looked up past this object (RTLD_NEXT), then in
 * libuv.so.1 itself, which is what finds it when libuv was loaded with local
 * scope (Lua's require). */
void *uvwi_real_lookup(const char *name);

/* Point libuv's and libuvwool.so's own references to the named functions
 * at the real libuv ones (reals[i] for names[i]; reals[0] identifies
 * libuv), so neither libuv's internal calls nor uvwool's wrappers reach the
 * interposers. 0 on success; otherwise -1 and a reason in why. */
int uvwi_bind_uvwool(const char *const *names, void *const *reals, size_t n, char *why, size_t whylen);

#endif
