/* libFuzzer target: the text carriers (base64url manifest text and W3C
 * baggage), and the baggage encoder on whatever decoded. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_setup();
  uvw_manifest_t *m;
  if (uvw_text_decode((const char *)data, size, &m) == 0) {
    fuzz_mount_and_encode(m);
    uvw_manifest_free(m);
  }
  if (uvw_baggage_decode((const char *)data, size, &m) == 0) {
    fuzz_mount_and_encode(m);
    uvw_manifest_free(m);
  }
  return 0;
}
