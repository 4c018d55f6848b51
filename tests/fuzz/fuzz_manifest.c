/* libFuzzer target: ChainManifest decode, then mount and re-encode what
 * decoded, so the mount and encode paths see hostile-but-valid input too. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_setup();
  uvw_set_strict(size > 0 && (data[0] & 0x80));
  uvw_manifest_t *m = NULL;
  if (uvw_manifest_decode(data, size, &m) == 0) {
    fuzz_mount_and_encode(m);
    uvw_manifest_free(m);
  }
  uvw_set_strict(0);
  return 0;
}
