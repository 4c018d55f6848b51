/* Reading a frame's dispatch id and kind without decoding it: a frame
 * that is well-formed protobuf but carries a value this side cannot decode
 * fails its own dispatch, not the connection (docs/dispatch.md). */
#include "dispatch_int.h"

int uvw__frame_peek(const uint8_t *p, size_t n, uint64_t *id, unsigned *kind) {
  size_t i = 0;
  *id = 0;
  *kind = 0;
  while (i < n) {
    uint64_t key = 0, v = 0;
    for (unsigned shift = 0;; shift += 7) {
      if (i >= n || shift > 63) return -1;
      key |= (uint64_t)(p[i] & 0x7f) << shift;
      if (!(p[i++] & 0x80)) break;
    }
    if ((key & 7) != 0 && (key & 7) != 2) return -1;
    for (unsigned shift = 0;; shift += 7) {
      if (i >= n || shift > 63) return -1;
      v |= (uint64_t)(p[i] & 0x7f) << shift;
      if (!(p[i++] & 0x80)) break;
    }
    if ((key & 7) == 2) {
      if (v > n - i) return -1;
      i += (size_t)v;
    }
    if (key >> 3 == 1 && (key & 7) == 0) *id = v;
    if (key >> 3 >= 2 && key >> 3 <= 5 && (key & 7) == 2) *kind = (unsigned)(key >> 3);
  }
  return *kind ? 0 : -1;
}

