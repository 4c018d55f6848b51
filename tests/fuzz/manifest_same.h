/* Whether two unpacked ChainManifests hold the same fields: the hand
 * scanner's (uvwool/src/wire/manifest_scan.c) against protobuf-c's own
 * unpack of the same bytes. Used by the manifest fuzz target and
 * tests/wire/test_manifest_scan.c. */
#ifndef UVWOOL_MANIFEST_SAME_H
#define UVWOOL_MANIFEST_SAME_H

#include <string.h>

#include "uvwool.pb-c.h"

static inline int ms_str_same(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

static inline int ms_bin_same(ProtobufCBinaryData a, ProtobufCBinaryData b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

static inline int ms_value_same(const Uvwool__Value *a, const Uvwool__Value *b) {
  if (a == NULL || b == NULL) return a == b;
  if (a->kind_case != b->kind_case) return 0;
  switch (a->kind_case) {
    case UVWOOL__VALUE__KIND_NIL:
      return !a->nil == !b->nil;
    case UVWOOL__VALUE__KIND_BOOL_VALUE:
      return !a->bool_value == !b->bool_value;
    case UVWOOL__VALUE__KIND_INT_VALUE:
      return a->int_value == b->int_value;
    case UVWOOL__VALUE__KIND_DOUBLE_VALUE: /* the bits: NaN and -0.0 too */
      return memcmp(&a->double_value, &b->double_value, sizeof(double)) == 0;
    case UVWOOL__VALUE__KIND_STRING_VALUE:
      return ms_bin_same(a->string_value, b->string_value);
    case UVWOOL__VALUE__KIND_BYTES_VALUE:
      return ms_bin_same(a->bytes_value, b->bytes_value);
    default:
      return 0; /* the scanner never makes an opaque or an empty value */
  }
}

/* 1 when the same; 0 with *why naming the first difference. */
static inline int manifest_same(const Uvwool__ChainManifest *a, const Uvwool__ChainManifest *b, const char **why) {
  if (!ms_str_same(a->id, b->id)) return *why = "id", 0;
  if (a->n_entries != b->n_entries) return *why = "entry count", 0;
  for (size_t i = 0; i < a->n_entries; i++) {
    const Uvwool__Entry *x = a->entries[i], *y = b->entries[i];
    if (!ms_str_same(x->namespace_, y->namespace_)) return *why = "an entry's namespace", 0;
    if (!ms_str_same(x->name, y->name)) return *why = "an entry's name", 0;
    if (!ms_value_same(x->value, y->value)) return *why = "an entry's value", 0;
  }
  return 1;
}

#endif
