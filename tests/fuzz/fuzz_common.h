/* Shared by the fuzz targets: quiet warnings, and a mount + re-encode of a
 * decoded manifest in a throwaway context. */
#ifndef UVWOOL_FUZZ_COMMON_H
#define UVWOOL_FUZZ_COMMON_H

#include "uvwool.h"

static void fuzz_quiet(const uvw_error_t *w, void *arg) {
  (void)w;
  (void)arg;
}

static inline void fuzz_setup(void) {
  static int done;
  if (!done) {
    uvw_set_warning_sink(fuzz_quiet, NULL);
    done = 1;
  }
}

static inline void fuzz_mount_and_encode(const uvw_manifest_t *m) {
  uvw_context_t *ctx = uvw_context_new();
  if (ctx == NULL || uvw_context_enter(ctx) != 0) {
    uvw_context_unref(ctx);
    return;
  }
  if (uvw_manifest_mount(m) == 0) {
    void *out;
    size_t len;
    if (uvw_manifest_encode(NULL, &out, &len) == 0) uvw_free(out);
    char *s;
    if (uvw_baggage_encode(NULL, &s) == 0) uvw_free(s);
  }
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
}

#endif
