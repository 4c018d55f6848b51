/* libFuzzer target: ChainManifest decode, then mount and re-encode what
 * decoded, so the mount and encode paths see hostile-but-valid input too.
 * Where the hand scanner (manifest_scan.c) reads the bytes at all, it must
 * read them exactly as protobuf-c's own unpack does. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "manifest_same.h"
#include "wire_int.h"

static void scan_as_protobuf_c(const uint8_t *data, size_t size) {
  uvw__mscan_t *scan;
  const Uvwool__ChainManifest *pb;
  if (data == NULL || uvw__manifest_scan(data, size, uvw__manifest_entry_fields(data, size), &scan, &pb) != 1)
    return;
  Uvwool__ChainManifest *ref = uvwool__chain_manifest__unpack(NULL, size, data);
  const char *why = "protobuf-c refused bytes the scanner read";
  if (ref == NULL || !manifest_same(pb, ref, &why)) {
    fprintf(stderr, "fuzz_manifest: the scanner and protobuf-c differ: %s\n", why);
    abort();
  }
  uvwool__chain_manifest__free_unpacked(ref, NULL);
  uvw__mscan_free(scan);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_setup();
  scan_as_protobuf_c(data, size);
  uvw_set_strict(size > 0 && (data[0] & 0x80));
  uvw_manifest_t *m = NULL;
  if (uvw_manifest_decode(data, size, &m) == 0) {
    fuzz_mount_and_encode(m);
    uvw_manifest_free(m);
  }
  uvw_set_strict(0);
  return 0;
}
