/* ChainManifest read by hand, for the shape uvwool's encoder writes
 * (manifest_encode.c), and protobuf-c's pack too: an id, then entries of a
 * namespace, a name and at most one value of a built-in kind, each field at
 * most once. That shape is nearly every manifest a connection carries, and
 * protobuf-c's generic unpack (with the depth scan before it) was most of
 * what decoding one cost.
 *
 * The result is the same Uvwool__ChainManifest protobuf-c would have made,
 * so the one set of decoding rules (manifest_decode.c) applies to both.
 * Anything else (an unknown field, a field twice, an opaque value, a NUL in
 * a name, a varint protobuf-c might read otherwise) is left to protobuf-c:
 * the scan says "not mine", never "malformed". tests/wire/test_manifest_scan.c
 * and the manifest fuzz target compare the two on every input the scan
 * reads. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "pbscan.h"
#include "wire_int.h"

struct uvw__mscan_s {
  Uvwool__ChainManifest pb;
  Uvwool__Entry **ptrs;
  Uvwool__Entry *entries;
  Uvwool__Value *values;
  char *text; /* the id and the keys, NUL-terminated */
};

/* A varint protobuf-c reads the same way: at most 10 bytes, the 10th
 * holding only the 64th bit. */
static int varint(const uint8_t *p, size_t n, size_t *i, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned k = 0; k < 10; k++) {
    if (*i >= n) return 0;
    uint8_t b = p[(*i)++];
    if (k == 9 && b > 1) return 0;
    v |= (uint64_t)(b & 0x7f) << (7 * k);
    if (!(b & 0x80)) {
      *out = v;
      return 1;
    }
  }
  return 0;
}

/* A field: its number and wire type, and its varint or payload. */
typedef struct {
  uint32_t num;
  unsigned type;
  uint64_t v;
  const uint8_t *data;
  size_t len;
} field_t;

/* The next field at p[*i]: 1, 0 at the end, -1 for anything the scan
 * leaves to protobuf-c. */
static int field(const uint8_t *p, size_t n, size_t *i, field_t *f) {
  if (*i >= n) return 0;
  uint64_t key;
  /* Every field the scan reads is below 16; a larger number is left to
   * protobuf-c (and would not fit num's 32 bits intact). */
  if (!varint(p, n, i, &key) || (key >> 3) == 0 || (key >> 3) > 15) return -1;
  f->num = (uint32_t)(key >> 3);
  f->type = (unsigned)(key & 7);
  switch (f->type) {
    case UVW__PB_VARINT:
      return varint(p, n, i, &f->v) ? 1 : -1;
    case UVW__PB_FIXED64:
      if (n - *i < 8) return -1;
      f->data = p + *i;
      f->len = 8;
      *i += 8;
      return 1;
    case UVW__PB_BYTES:
      if (!varint(p, n, i, &f->v) || f->v > n - *i) return -1;
      f->data = p + *i;
      f->len = (size_t)f->v;
      *i += f->len;
      return 1;
    default:
      return -1;
  }
}

/* A string field into s's text, NUL-terminated; 0 when it holds a NUL. */
static int text(char **cursor, const uint8_t *data, size_t len, char **out) {
  if (memchr(data, 0, len) != NULL) return 0;
  memcpy(*cursor, data, len);
  (*cursor)[len] = '\0';
  *out = *cursor;
  *cursor += len + 1;
  return 1;
}

static int value(const uint8_t *p, size_t n, Uvwool__Value *out) {
  uvwool__value__init(out);
  size_t i = 0;
  field_t f;
  if (field(p, n, &i, &f) != 1 || i != n) return 0; /* exactly one field */
  uint64_t v = f.v;
  switch (f.num) {
    case 1:
    case 2:
    case 3:
      if (f.type != UVW__PB_VARINT) return 0;
      if (f.num == 1) {
        out->kind_case = UVWOOL__VALUE__KIND_NIL;
        out->nil = v != 0;
      } else if (f.num == 2) {
        out->kind_case = UVWOOL__VALUE__KIND_BOOL_VALUE;
        out->bool_value = v != 0;
      } else {
        out->kind_case = UVWOOL__VALUE__KIND_INT_VALUE;
        out->int_value = (int64_t)((v >> 1) ^ (~(v & 1) + 1)); /* zig-zag */
      }
      return 1;
    case 4:
      if (f.type != UVW__PB_FIXED64) return 0;
      uint64_t bits = 0;
      for (int k = 7; k >= 0; k--) bits = bits << 8 | f.data[k]; /* little-endian on the wire */
      out->kind_case = UVWOOL__VALUE__KIND_DOUBLE_VALUE;
      memcpy(&out->double_value, &bits, sizeof(bits));
      return 1;
    case 5:
    case 6:
      if (f.type != UVW__PB_BYTES) return 0;
      ProtobufCBinaryData b = {f.len, (uint8_t *)f.data};
      if (f.num == 5) {
        out->kind_case = UVWOOL__VALUE__KIND_STRING_VALUE;
        out->string_value = b;
      } else {
        out->kind_case = UVWOOL__VALUE__KIND_BYTES_VALUE;
        out->bytes_value = b;
      }
      return 1;
    default:
      return 0; /* an opaque value, or a field Value does not have */
  }
}

static int entry(char **cursor, const uint8_t *p, size_t n, Uvwool__Entry *e, Uvwool__Value *val) {
  uvwool__entry__init(e);
  size_t i = 0;
  field_t f;
  int rc;
  while ((rc = field(p, n, &i, &f)) == 1) {
    if (f.type != UVW__PB_BYTES) return 0;
    if (f.num == 1 && e->namespace_ == NULL) {
      if (!text(cursor, f.data, f.len, &e->namespace_)) return 0;
    } else if (f.num == 2 && e->name == NULL) {
      if (!text(cursor, f.data, f.len, &e->name)) return 0;
    } else if (f.num == 3 && e->value == NULL) {
      if (!value(f.data, f.len, val)) return 0;
      e->value = val;
    } else {
      return 0;
    }
  }
  return rc == 0;
}

void uvw__mscan_free(uvw__mscan_t *s) { uvw__free(s); }

int uvw__manifest_scan(const uint8_t *p, size_t n, size_t nentries, uvw__mscan_t **out,
                       const Uvwool__ChainManifest **pb) {
  *out = NULL;
  *pb = NULL;
  if (nentries > UVW__WIRE_MAX_ENTRIES) return 0;
  /* One block: the header, the entries, their values, the entry pointers
   * and the text (at most the input's bytes plus a NUL per string). */
  size_t per_entry = sizeof(Uvwool__Entry) + sizeof(Uvwool__Value) + sizeof(Uvwool__Entry *);
  uvw__mscan_t *s = uvw__malloc(sizeof(uvw__mscan_t) + nentries * per_entry + n + 1 + 2 * nentries);
  if (s == NULL) return uvw__error_nomem("manifest");
  s->entries = (Uvwool__Entry *)(s + 1);
  s->values = (Uvwool__Value *)(s->entries + nentries);
  s->ptrs = (Uvwool__Entry **)(s->values + nentries);
  s->text = (char *)(s->ptrs + nentries);
  char *cursor = s->text;
  uvwool__chain_manifest__init(&s->pb);
  s->pb.entries = s->ptrs;
  size_t i = 0;
  field_t f;
  int rc;
  while ((rc = field(p, n, &i, &f)) == 1) {
    if (f.type != UVW__PB_BYTES) break;
    if (f.num == 1 && s->pb.id == NULL) {
      if (!text(&cursor, f.data, f.len, &s->pb.id)) break;
    } else if (f.num == 2 && s->pb.n_entries < nentries) {
      size_t k = s->pb.n_entries;
      if (!entry(&cursor, f.data, f.len, &s->entries[k], &s->values[k])) break;
      s->ptrs[k] = &s->entries[k];
      s->pb.n_entries++;
    } else {
      break;
    }
  }
  if (rc != 0 || s->pb.n_entries != nentries) {
    uvw__free(s);
    return 0;
  }
  *out = s;
  *pb = &s->pb;
  return 1;
}
