/* The hand-read ChainManifest (uvwool/src/wire/manifest_scan.c) against
 * protobuf-c's own unpack of the same bytes: wherever the scanner reads a
 * manifest, it reads exactly what protobuf-c reads; what it leaves alone
 * still decodes through protobuf-c. */
#include <math.h>
#include <stdio.h>

#include "../fuzz/manifest_same.h"
#include "wire_int.h"
#include "wiretest.h"

/* 1: the scanner read the bytes (and agrees with protobuf-c, or the test
 * fails); 0: it left them to protobuf-c. */
static int scan_agrees(const uint8_t *p, size_t n, const char *what) {
  uvw__mscan_t *scan;
  const Uvwool__ChainManifest *pb;
  int rc = uvw__manifest_scan(p, n, uvw__manifest_entry_fields(p, n), &scan, &pb);
  cr_assert(rc == 0 || rc == 1, "%s: rc %d", what, rc);
  if (rc == 0) {
    cr_assert_null(scan);
    return 0;
  }
  Uvwool__ChainManifest *ref = uvwool__chain_manifest__unpack(NULL, n, p);
  cr_assert_not_null(ref, "%s: protobuf-c refuses bytes the scanner read", what);
  const char *why = "";
  cr_assert(manifest_same(pb, ref, &why), "%s: the scanner and protobuf-c differ in %s", what, why);
  uvwool__chain_manifest__free_unpacked(ref, NULL);
  uvw__mscan_free(scan);
  return 1;
}

static uint8_t *pack(wt_manifest_t *w, size_t *len) { return wt_pack_manifest(w, len); }

/* Every value kind the scanner reads, at its edges. */
Test(manifest_scan, every_builtin_kind_reads_as_protobuf_c_reads_it) {
  static const int64_t ints[] = {0, 1, -1, 63, -64, 64, INT64_MAX, INT64_MIN};
  static const double doubles[] = {0.0, -0.0, 1.5, -1e308, INFINITY, NAN};
  wt_manifest_t w;
  wt_init(&w, "0123456789abcdef0123456789abcdef");
  char names[40][8];
  size_t k = 0;
#define NEXT(with) (snprintf(names[k], sizeof names[k], "v%02zu", k), wt_entry(&w, "ns", names[k++], with))
  for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) wt_int(NEXT(1), ints[i]);
  for (size_t i = 0; i < sizeof doubles / sizeof *doubles; i++) {
    Uvwool__Value *v = NEXT(1);
    v->kind_case = UVWOOL__VALUE__KIND_DOUBLE_VALUE;
    v->double_value = doubles[i];
  }
  for (int b = 0; b < 2; b++) {
    Uvwool__Value *v = NEXT(1);
    v->kind_case = UVWOOL__VALUE__KIND_BOOL_VALUE;
    v->bool_value = b;
  }
  Uvwool__Value *nil = NEXT(1);
  nil->kind_case = UVWOOL__VALUE__KIND_NIL;
  nil->nil = 1;
  wt_string(NEXT(1), "");
  wt_string(NEXT(1), "text");
  Uvwool__Value *bytes = NEXT(1);
  bytes->kind_case = UVWOOL__VALUE__KIND_BYTES_VALUE;
  bytes->bytes_value.data = (uint8_t *)"\0\1\2";
  bytes->bytes_value.len = 3;
  NEXT(0); /* a pending reset */
#undef NEXT
  size_t len;
  uint8_t *p = pack(&w, &len);
  cr_assert(scan_agrees(p, len, "every kind"), "the scanner reads protobuf-c's own encoding of every kind");
  free(p);

  /* No id, an empty id, no entries at all. */
  wt_init(&w, NULL);
  wt_int(wt_entry(&w, "ns", "a", 1), 5);
  p = pack(&w, &len);
  cr_assert(scan_agrees(p, len, "no id"));
  free(p);
  wt_init(&w, "");
  p = pack(&w, &len);
  cr_assert(len > 0 && scan_agrees(p, len, "empty id"));
  free(p);
  cr_assert(scan_agrees((const uint8_t *)"", 0, "empty manifest"));
}

/* What uvwool's own encoder writes is always read by the scanner. */
Test(manifest_scan, the_encoders_manifests_are_read_by_the_scanner) {
  const char *ns = tu_namespace();
  uvw_context_t *ctx = wt_enter_new();
  for (int i = 0; i < 12; i++) {
    char name[8];
    snprintf(name, sizeof name, "k%d", i);
    uvw_var_t *v = wt_declare(ns, name);
    if (i == 11) {
      wt_set_reset(v);
    } else {
      wt_set(v, i % 3 == 0 ? uvw_value_int(-i) : i % 3 == 1 ? uvw_value_cstring("s") : uvw_value_double(i / 4.0));
    }
    void *out;
    size_t len;
    cr_assert_eq(uvw__manifest_encode(NULL, 0, &out, &len), 0);
    cr_assert(scan_agrees(out, len, "encoder output"), "the encoder's manifest of %d variables is scanned", i + 1);
    uvw_free(out);
  }
  wt_leave(ctx);
}

/* Shapes left to protobuf-c, which the decoder still decodes right. */
Test(manifest_scan, other_shapes_are_left_to_protobuf_c) {
  const char *ns = tu_namespace();
  wt_declare(ns, "a");
  wt_manifest_t w;
  wt_init(&w, "0123456789abcdef0123456789abcdef");
  wt_int(wt_entry(&w, ns, "a", 1), 7);
  size_t len;
  uint8_t *base = pack(&w, &len);
  uint8_t buf[512];
  cr_assert_lt(len + 16, sizeof buf);

  /* An unknown top-level field (3, varint), then an id given twice. */
  memcpy(buf, base, len);
  buf[len] = 0x18, buf[len + 1] = 0x01;
  cr_assert_not(scan_agrees(buf, len + 2, "unknown field"));
  buf[len] = 0x0a, buf[len + 1] = 0x01, buf[len + 2] = '0';
  cr_assert_not(scan_agrees(buf, len + 3, "second id"));
  uvw_manifest_t *m;
  cr_assert_eq(uvw_manifest_decode(buf, len + 3, &m), UVW_EMALFORMED, "the last id wins and is malformed");
  buf[len] = 0x18, buf[len + 1] = 0x01;
  cr_assert_eq(uvw_manifest_decode(buf, len + 2, &m), 0, "protobuf-c skips an unknown field");
  cr_assert_eq(uvw_manifest_entry_count(m), 1);
  cr_assert_eq(uvw_value_as_int(uvw_manifest_entry_value(m, 0)), 7);
  uvw_manifest_free(m);
  free(base);

  /* An opaque value. */
  wt_init(&w, NULL);
  Uvwool__Value *v = wt_entry(&w, ns, "a", 1);
  uvwool__opaque__init(&w.opaques[0]);
  w.opaques[0].codec = "nobody.registered";
  v->kind_case = UVWOOL__VALUE__KIND_OPAQUE;
  v->opaque = &w.opaques[0];
  uint8_t *p = pack(&w, &len);
  cr_assert_not(scan_agrees(p, len, "opaque"));
  free(p);

  /* A value with no kind, and a value given twice in an entry (protobuf-c
   * merges the two). */
  wt_init(&w, NULL);
  wt_entry(&w, ns, "a", 1); /* kind not set */
  p = pack(&w, &len);
  cr_assert_not(scan_agrees(p, len, "value without a kind"));
  free(p);
  static const uint8_t twice[] = {0x12, 0x0c, 0x0a, 0x01, 'n', 0x12, 0x01, 'a', 0x1a, 0x02, 0x08, 0x01, 0x1a, 0x00};
  cr_assert_not(scan_agrees(twice, sizeof twice, "value twice"));

  /* A NUL in a name: protobuf-c's path reports it. */
  static const uint8_t nul[] = {0x12, 0x08, 0x0a, 0x01, 'n', 0x12, 0x03, 'a', 0, 'b'};
  cr_assert_not(scan_agrees(nul, sizeof nul, "NUL"));
  cr_assert_eq(uvw_manifest_decode(nul, sizeof nul, &m), UVW_EMALFORMED);
}

static uint64_t xorshift(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Random manifests, then every byte flipped and every cut: wherever the
 * scanner reads, it agrees with protobuf-c. */
Test(manifest_scan, mutated_manifests_agree_or_are_left_alone, .timeout = 120) {
  uint64_t s = 0x5ca77e5ca77eULL;
#define RND() xorshift(&s)
  unsigned long read = 0, left = 0;
  for (int round = 0; round < 200; round++) {
    wt_manifest_t w;
    wt_init(&w, RND() % 4 ? "0123456789abcdef0123456789abcdef" : NULL);
    char names[8][8];
    size_t n = RND() % 8;
    for (size_t i = 0; i < n; i++) {
      snprintf(names[i], sizeof names[i], "n%zu", (size_t)(RND() % 6));
      Uvwool__Value *v = wt_entry(&w, RND() % 2 ? "x" : "y", names[i], (int)(RND() % 5 != 0));
      switch (RND() % 4) {
        case 0:
          wt_int(v, (int64_t)RND());
          break;
        case 1:
          wt_string(v, RND() % 2 ? "" : "some text");
          break;
        case 2:
          v->kind_case = UVWOOL__VALUE__KIND_DOUBLE_VALUE;
          v->double_value = (double)(int64_t)RND() / 3.0;
          break;
        default:
          v->kind_case = UVWOOL__VALUE__KIND_BOOL_VALUE;
          v->bool_value = (int)(RND() % 2);
      }
    }
    size_t len;
    uint8_t *p = pack(&w, &len);
    cr_assert(scan_agrees(p, len, "random manifest"));
    uint8_t *q = malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
      memcpy(q, p, len);
      q[i] ^= (uint8_t)(1u << (RND() % 8));
      if (scan_agrees(q, len, "flipped")) read++;
      else left++;
      if (scan_agrees(p, i, "cut")) read++;
      else left++;
    }
    free(q);
    free(p);
  }
#undef RND
  printf("manifest scan: %lu mutated inputs read by the scanner, %lu left to protobuf-c\n", read, left);
  cr_assert_gt(read, 100, "the mutations reach the scanner's accepting paths");
  cr_assert_gt(left, 100, "and its refusing ones");
}
