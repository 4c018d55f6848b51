/* Protobuf's wire format read and written by hand, for the few places that
 * look at a message's top level without unpacking it (delta manifests keep
 * and compare entries as bytes). Only what those places need: fields of
 * every wire type protobuf still uses are read, varints and
 * length-delimited fields are written. */
#ifndef UVW_WIRE_PBSCAN_H
#define UVW_WIRE_PBSCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define UVW__PB_VARINT 0u
#define UVW__PB_FIXED64 1u
#define UVW__PB_BYTES 2u
#define UVW__PB_FIXED32 5u

/* One field: its number and wire type; `v` for a varint, `data`/`len` for
 * the payload of a length-delimited field (and of a fixed one). */
typedef struct {
  uint64_t number;
  unsigned type;
  uint64_t v;
  const uint8_t *data;
  size_t len;
} uvw__pb_field_t;

/* A varint at p[*i], below n. 0 when it runs past n or over 10 bytes. */
static inline int uvw__pb_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (*i >= n) return 0;
    uint8_t b = p[(*i)++];
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return 1;
    }
  }
  return 0;
}

/* The field at p[*i]: 1 (f filled, *i past it), 0 at the end of the
 * message, -1 when what is there is not a field (bad varint, a payload
 * past the end, a group or an unknown wire type). */
static inline int uvw__pb_next(const uint8_t *p, size_t n, size_t *i, uvw__pb_field_t *f) {
  if (*i >= n) return 0;
  uint64_t key;
  if (!uvw__pb_varint(p, n, i, &key) || (key >> 3) == 0) return -1;
  f->number = key >> 3;
  f->type = (unsigned)(key & 7);
  f->v = 0;
  size_t len;
  switch (f->type) {
    case UVW__PB_VARINT:
      f->data = NULL;
      f->len = 0;
      return uvw__pb_varint(p, n, i, &f->v) ? 1 : -1;
    case UVW__PB_BYTES:
      if (!uvw__pb_varint(p, n, i, &f->v) || f->v > n - *i) return -1;
      len = (size_t)f->v;
      break;
    case UVW__PB_FIXED64:
      len = 8;
      break;
    case UVW__PB_FIXED32:
      len = 4;
      break;
    default:
      return -1;
  }
  if (len > n - *i) return -1;
  f->data = p + *i;
  f->len = len;
  *i += len;
  return 1;
}

/* Most bytes a varint takes. */
#define UVW__PB_VARINT_MAX 10

static inline size_t uvw__pb_put_varint(uint8_t *out, uint64_t v) {
  size_t k = 0;
  while (v >= 0x80) {
    out[k++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  out[k++] = (uint8_t)v;
  return k;
}

/* A length-delimited field `number` holding data[0..len). */
static inline size_t uvw__pb_put_bytes(uint8_t *out, uint32_t number, const void *data, size_t len) {
  size_t k = uvw__pb_put_varint(out, ((uint64_t)number << 3) | UVW__PB_BYTES);
  k += uvw__pb_put_varint(out + k, len);
  if (len) memcpy(out + k, data, len);
  return k + len;
}

static inline size_t uvw__pb_put_uint(uint8_t *out, uint32_t number, uint64_t v) {
  size_t k = uvw__pb_put_varint(out, ((uint64_t)number << 3) | UVW__PB_VARINT);
  return k + uvw__pb_put_varint(out + k, v);
}

/* Bytes uvw__pb_put_bytes writes for a payload of len bytes. */
static inline size_t uvw__pb_bytes_size(uint32_t number, size_t len) {
  uint8_t scratch[UVW__PB_VARINT_MAX];
  return uvw__pb_put_varint(scratch, ((uint64_t)number << 3) | UVW__PB_BYTES) + uvw__pb_put_varint(scratch, len) +
         len;
}

#endif
