/* libFuzzer target: Request and Response decode; what decodes is encoded
 * again and its manifest mounted (deferred errors included). */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common.h"

static void exercise(uvw_frame_t *f) {
  void *out;
  size_t len;
  if (uvw_frame_encode(f, &out, &len) == 0) uvw_free(out);
  uvw_context_t *ctx = uvw_context_new();
  if (ctx && uvw_context_enter(ctx) == 0) {
    (void)uvw_frame_mount(f);
    uvw_context_exit(ctx);
  }
  uvw_context_unref(ctx);
  uvw_frame_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_setup();
  uvw_frame_t *f;
  if (uvw_frame_decode_request(data, size, &f) == 0) exercise(f);
  if (uvw_frame_decode_response(data, size, &f) == 0) exercise(f);
  return 0;
}
