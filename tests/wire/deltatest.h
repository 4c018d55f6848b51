/* Helpers for the delta-manifest tests (uvwool/src/wire/wire_delta.h):
 * real manifests of live contexts, hand-built messages (pbscan.h), a view of
 * a ManifestDelta read with the scanner, and a link (a sender book and a
 * receiver book) that checks every rebuilt manifest byte for byte.
 * Expectations are read back with protobuf-c or the scanner, never with
 * delta.c itself. */
#ifndef UVWOOL_DELTATEST_H
#define UVWOOL_DELTATEST_H

#include "alloc.h"
#include "pbscan.h"
#include "wire_delta.h"
#include "wire_int.h"
#include "wiretest.h"

/* ---- small helpers ------------------------------------------------------------ */

typedef struct {
  uint8_t *p; /* uvw allocator (uvw_free) */
  size_t n;
} buf_t;

static inline buf_t encode_ctx(uvw_context_t *ctx) {
  void *p = NULL;
  size_t n = 0;
  int rc = uvw__manifest_encode(ctx, 0, &p, &n);
  cr_assert_eq(rc, 0, "encode: %s", uvw_error_message(uvw_last_error()));
  cr_assert_not_null(p, "an armed context encodes to something");
  return (buf_t){p, n};
}

static inline void set_in(uvw_context_t *ctx, uvw_var_t *v, uvw_value_t *val) {
  cr_assert_eq(uvw_context_enter(ctx), 0);
  wt_set(v, val);
  cr_assert_eq(uvw_context_exit(ctx), 0);
}

static inline void chain_id(uvw_context_t *ctx, char id[33]) { cr_assert_eq(uvw_context_chain_id(ctx, id), 0); }

static inline const char *errmsg(void) {
  const uvw_error_t *e = uvw_last_error();
  return e ? uvw_error_message(e) : "(no detail)";
}

/* Entries of a ChainManifest, as spans of their Entry messages. */
typedef struct {
  const uint8_t *p;
  size_t n;
} span_t;

static inline size_t entries_of(const buf_t *m, span_t *out, size_t max) {
  size_t i = 0, k = 0;
  uvw__pb_field_t f;
  int rc;
  while ((rc = uvw__pb_next(m->p, m->n, &i, &f)) == 1)
    if (f.number == 2) {
      cr_assert_lt(k, max);
      out[k++] = (span_t){f.data, f.len};
    }
  cr_assert_eq(rc, 0);
  return k;
}

/* What a ManifestDelta holds, read with the scanner. */
typedef struct {
  int has_id, has_base;
  char id[UVW__DELTA_MAX_ID + 1];
  uint64_t base;
  size_t changed, dropped, other;
} delta_view_t;

static inline delta_view_t view_delta(const uint8_t *d, size_t n) {
  delta_view_t v = {0};
  size_t i = 0;
  uvw__pb_field_t f;
  int rc;
  while ((rc = uvw__pb_next(d, n, &i, &f)) == 1) {
    if (f.number == 1 && f.type == UVW__PB_BYTES && f.len <= UVW__DELTA_MAX_ID) {
      v.has_id = 1;
      memcpy(v.id, f.data, f.len);
      v.id[f.len] = '\0';
    } else if (f.number == 2 && f.type == UVW__PB_VARINT) {
      v.has_base = 1;
      v.base = f.v;
    } else if (f.number == 3) {
      v.changed++;
    } else if (f.number == 4) {
      v.dropped++;
    } else {
      v.other++;
    }
  }
  cr_assert_eq(rc, 0, "the delta is a protobuf message");
  return v;
}

/* A message built by hand. */
typedef struct {
  uint8_t b[40000];
  size_t n;
} pb_t;

static inline void pb_bytes(pb_t *o, uint32_t num, const void *d, size_t len) {
  cr_assert_lt(o->n + len + 2 * UVW__PB_VARINT_MAX, sizeof o->b);
  o->n += uvw__pb_put_bytes(o->b + o->n, num, d, len);
}
static inline void pb_str(pb_t *o, uint32_t num, const char *s) { pb_bytes(o, num, s, strlen(s)); }
static inline void pb_uint(pb_t *o, uint32_t num, uint64_t v) { o->n += uvw__pb_put_uint(o->b + o->n, num, v); }
static inline void pb_span(pb_t *o, uint32_t num, span_t s) { pb_bytes(o, num, s.p, s.n); }
/* An Entry of only a key (a `dropped` element), as field num. */
static inline void pb_key(pb_t *o, uint32_t num, const char *ns, const char *name) {
  pb_t *e = calloc(1, sizeof *e);
  pb_str(e, 1, ns);
  pb_str(e, 2, name);
  pb_bytes(o, num, e->b, e->n);
  free(e);
}

/* The same chain in a fresh context (not entered) holding only the
 * entries i of ctx's manifest with keep[i] (i < nkeep; the others are
 * dropped; at least one must be kept). New reference. */
static inline uvw_context_t *remount(uvw_context_t *ctx, const unsigned char *keep, size_t nkeep) {
  buf_t m = encode_ctx(ctx);
  Uvwool__ChainManifest *pm = wt_unpack(m.p, m.n);
  Uvwool__Entry **all = pm->entries, *kept[64];
  size_t n = pm->n_entries, k = 0;
  cr_assert_leq(n, 64);
  for (size_t i = 0; i < n; i++)
    if (i < nkeep && keep[i]) kept[k++] = all[i];
  if (k == 0) kept[k++] = all[0]; /* a mount of nothing would not arm */
  pm->entries = kept;
  pm->n_entries = k;
  size_t len;
  uint8_t *sub = wt_pack(&pm->base, &len);
  pm->entries = all;
  pm->n_entries = n;
  uvwool__chain_manifest__free_unpacked(pm, NULL);
  uvw_free(m.p);
  uvw_manifest_t *mm;
  cr_assert_eq(uvw_manifest_decode(sub, len, &mm), 0, "%s", errmsg());
  free(sub);
  uvw_context_t *fresh = uvw_context_new();
  cr_assert_eq(uvw_context_enter(fresh), 0);
  cr_assert_eq(uvw_manifest_mount(mm), 0);
  cr_assert_eq(uvw_context_exit(fresh), 0);
  uvw_manifest_free(mm);
  char a[33], b[33];
  chain_id(ctx, a);
  chain_id(fresh, b);
  cr_assert_str_eq(a, b, "the same chain");
  return fresh;
}

/* ---- a link: a sender book and a receiver book ------------------------------------ */

typedef struct {
  uvw__delta_book_t *tx, *rx;
} link_t;

static inline link_t link_new(size_t s, size_t r) {
  link_t l = {uvw__delta_book_new(s), uvw__delta_book_new(r)};
  cr_assert(l.tx && l.rx);
  return l;
}
static inline void link_free(link_t *l) {
  uvw__delta_book_free(l->tx);
  uvw__delta_book_free(l->rx);
}

/* Send `full` over the link as the connection would: a delta when the
 * sender makes one, else the full manifest. The receiver must rebuild
 * exactly `full`. Returns the delta's size (0: sent full). */
static inline size_t ship(link_t *l, const buf_t *full, int allow) {
  uint8_t *d = (uint8_t *)1;
  size_t dlen = 99;
  int rc = uvw__delta_send(l->tx, full->p, full->n, allow, &d, &dlen);
  cr_assert_eq(rc, 0, "send: %s", errmsg());
  if (d == NULL) {
    cr_assert_eq(dlen, 0);
    cr_assert_eq(uvw__delta_recv_full(l->rx, full->p, full->n), 0, "recv_full: %s", errmsg());
    return 0;
  }
  cr_assert(allow, "no delta without allow");
  cr_assert_lt(dlen, full->n, "a delta only when smaller than the full manifest");
  uint8_t *out = NULL;
  size_t olen = 0;
  char rid[UVW__DELTA_MAX_ID + 1];
  rc = uvw__delta_recv(l->rx, d, dlen, &out, &olen, rid);
  cr_assert_eq(rc, 0, "recv: %s", errmsg());
  cr_assert_eq(olen, full->n, "rebuilt %zu bytes, sender had %zu", olen, full->n);
  cr_assert_eq(memcmp(out, full->p, olen), 0, "rebuilt bytes differ from the sender's");
  uvw_free(out);
  uvw_free(d);
  return dlen;
}

#endif
