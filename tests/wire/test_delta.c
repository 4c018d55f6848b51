/* Delta manifests (uvwool/src/wire/wire_delta.h): a sender book and a
 * receiver book fed the same manifests must agree byte for byte. The
 * manifests are real ones (uvw__manifest_encode of live contexts); hostile
 * deltas are built by hand with pbscan.h from those manifests' Entry bytes;
 * expectations about the bytes are read back with protobuf-c or the scanner,
 * never with delta.c itself. */
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

static buf_t encode_ctx(uvw_context_t *ctx) {
  void *p = NULL;
  size_t n = 0;
  int rc = uvw__manifest_encode(ctx, 0, &p, &n);
  cr_assert_eq(rc, 0, "encode: %s", uvw_error_message(uvw_last_error()));
  cr_assert_not_null(p, "an armed context encodes to something");
  return (buf_t){p, n};
}

static uvw_var_t *declare(const char *ns, const char *name) {
  uvw_var_t *v;
  cr_assert_eq(uvw_var_declare(ns, name, NULL, &v), 0);
  return v;
}

static void set_in(uvw_context_t *ctx, uvw_var_t *v, uvw_value_t *val) {
  cr_assert_eq(uvw_context_enter(ctx), 0);
  wt_set(v, val);
  cr_assert_eq(uvw_context_exit(ctx), 0);
}

static void chain_id(uvw_context_t *ctx, char id[33]) { cr_assert_eq(uvw_context_chain_id(ctx, id), 0); }

static const char *errmsg(void) {
  const uvw_error_t *e = uvw_last_error();
  return e ? uvw_error_message(e) : "(no detail)";
}

/* Entries of a ChainManifest, as spans of their Entry messages. */
typedef struct {
  const uint8_t *p;
  size_t n;
} span_t;

static size_t entries_of(const buf_t *m, span_t *out, size_t max) {
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

static delta_view_t view_delta(const uint8_t *d, size_t n) {
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

static void pb_bytes(pb_t *o, uint32_t num, const void *d, size_t len) {
  cr_assert_lt(o->n + len + 2 * UVW__PB_VARINT_MAX, sizeof o->b);
  o->n += uvw__pb_put_bytes(o->b + o->n, num, d, len);
}
static void pb_str(pb_t *o, uint32_t num, const char *s) { pb_bytes(o, num, s, strlen(s)); }
static void pb_uint(pb_t *o, uint32_t num, uint64_t v) { o->n += uvw__pb_put_uint(o->b + o->n, num, v); }
static void pb_span(pb_t *o, uint32_t num, span_t s) { pb_bytes(o, num, s.p, s.n); }
/* An Entry of only a key (a `dropped` element), as field num. */
static void pb_key(pb_t *o, uint32_t num, const char *ns, const char *name) {
  pb_t *e = calloc(1, sizeof *e);
  pb_str(e, 1, ns);
  pb_str(e, 2, name);
  pb_bytes(o, num, e->b, e->n);
  free(e);
}

/* The same chain in a fresh context (not entered) holding only the
 * entries i of ctx's manifest with keep[i] (i < nkeep; the others are
 * dropped; at least one must be kept). New reference. */
static uvw_context_t *remount(uvw_context_t *ctx, const unsigned char *keep, size_t nkeep) {
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

static link_t link_new(size_t s, size_t r) {
  link_t l = {uvw__delta_book_new(s), uvw__delta_book_new(r)};
  cr_assert(l.tx && l.rx);
  return l;
}
static void link_free(link_t *l) {
  uvw__delta_book_free(l->tx);
  uvw__delta_book_free(l->rx);
}

/* Send `full` over the link as the connection would: a delta when the
 * sender makes one, else the full manifest. The receiver must rebuild
 * exactly `full`. Returns the delta's size (0: sent full). */
static size_t ship(link_t *l, const buf_t *full, int allow) {
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

/* ---- round trip ------------------------------------------------------------------- */

Test(delta, round_trip_over_rounds) {
  const char *ns = tu_namespace();
  char ns_buf[64];
  snprintf(ns_buf, sizeof ns_buf, "%s", ns);
  uvw_var_t *v[12];
  char name[8];
  for (int i = 0; i < 12; i++) {
    snprintf(name, sizeof name, "v%02d", i);
    v[i] = declare(ns_buf, name);
  }
  link_t l = link_new(4, 4);
  uvw_context_t *ctx = wt_enter_new();
  for (int i = 0; i < 8; i++) wt_set(v[i], uvw_value_cstring("a value of some length"));
  char id[33];
  chain_id(ctx, id);

  /* Round 1: new to both books, so full. */
  buf_t m1 = encode_ctx(NULL);
  cr_assert_eq(ship(&l, &m1, 1), 0, "a chain new to the book goes full");
  cr_assert_eq(uvw__delta_book_count(l.tx), 1);
  cr_assert_eq(uvw__delta_book_count(l.rx), 1);

  /* Round 2: one var of 8 changed: a delta, much smaller. */
  wt_set(v[3], uvw_value_int(42));
  buf_t m2 = encode_ctx(NULL);
  uint8_t *d;
  size_t dlen;
  {
    link_t probe = link_new(4, 4); /* the same exchange, to look at the delta */
    ship(&probe, &m1, 1);
    cr_assert_eq(uvw__delta_send(probe.tx, m2.p, m2.n, 1, &d, &dlen), 0);
    cr_assert_not_null(d);
    delta_view_t dv = view_delta(d, dlen);
    cr_assert(dv.has_id && dv.has_base);
    cr_assert_str_eq(dv.id, id, "the delta names the chain by its manifest id");
    cr_assert_eq(dv.base, 1, "against the full manifest: version 1");
    cr_assert_eq(dv.changed, 1);
    cr_assert_eq(dv.dropped, 0);
    cr_assert_eq(dv.other, 0);
    cr_assert_lt(dlen * 3, m2.n, "one entry of 8 changed: %zu vs %zu bytes", dlen, m2.n);
    uvw_free(d);
    link_free(&probe);
  }
  size_t n2 = ship(&l, &m2, 1);
  cr_assert_gt(n2, 0, "sent as a delta");
  cr_assert_lt(n2 * 3, m2.n);

  /* Round 3: nothing changed: a tiny delta (id + base only). */
  buf_t m3 = encode_ctx(NULL);
  cr_assert_eq(m3.n, m2.n);
  size_t n3 = ship(&l, &m3, 1);
  cr_assert_gt(n3, 0);
  cr_assert_leq(n3, 2 + 32 + 2 + UVW__PB_VARINT_MAX, "an unchanged manifest: %zu bytes", n3);

  /* Round 4: a var set with a token and reset while it was unbound: a
   * value-less (pending reset) entry appears; and one bound var reset back
   * to an earlier value. */
  uvw_token_t *t;
  uvw_value_t *nine = uvw_value_int(9);
  cr_assert_eq(uvw_set(v[8], nine, &t), 0);
  cr_assert_eq(uvw_reset(v[8], t), 0);
  uvw_token_free(t);
  uvw_value_unref(nine);
  buf_t m4 = encode_ctx(NULL);
  Uvwool__ChainManifest *pm = wt_unpack(m4.p, m4.n);
  cr_assert_eq(pm->n_entries, 9);
  cr_assert_str_eq(pm->entries[8]->name, "v08");
  cr_assert_null(pm->entries[8]->value, "a pending reset has no value");
  uvwool__chain_manifest__free_unpacked(pm, NULL);
  cr_assert_gt(ship(&l, &m4, 1), 0);

  /* Round 5: the pending reset bound again, three vars added. */
  wt_set(v[8], uvw_value_bytes("\0\1\2", 3));
  wt_set(v[9], uvw_value_nil());
  wt_set(v[10], uvw_value_cstring(""));
  wt_set(v[11], uvw_value_int(-7));
  buf_t m5 = encode_ctx(NULL);
  cr_assert_gt(ship(&l, &m5, 1), 0);

  /* Round 6: vars dropped: the same chain id in a fresh context, mounted
   * from the manifest without two of its entries (v02 and v07), and one
   * var changed there. */
  static const unsigned char keep[12] = {1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1};
  uvw_context_t *fresh = remount(ctx, keep, 12);
  wt_leave(ctx);
  ctx = fresh;
  cr_assert_eq(uvw_context_enter(ctx), 0);
  wt_set(v[1], uvw_value_cstring("changed"));
  char id2[33];
  chain_id(ctx, id2);
  cr_assert_str_eq(id2, id, "same chain");
  buf_t m6 = encode_ctx(NULL);
  {
    link_t probe = link_new(4, 4);
    ship(&probe, &m5, 1);
    cr_assert_eq(uvw__delta_send(probe.tx, m6.p, m6.n, 1, &d, &dlen), 0);
    cr_assert_not_null(d);
    delta_view_t dv = view_delta(d, dlen);
    cr_assert_eq(dv.base, 1);
    cr_assert_eq(dv.changed, 1, "v01 changed");
    cr_assert_eq(dv.dropped, 2, "v02 and v07 dropped");
    uvw_free(d);
    link_free(&probe);
  }
  cr_assert_gt(ship(&l, &m6, 1), 0);

  /* Round 7: allow = 0 sends full (version 1 again), and deltas resume. */
  cr_assert_eq(ship(&l, &m6, 0), 0);
  wt_set(v[0], uvw_value_cstring("back"));
  buf_t m7 = encode_ctx(NULL);
  cr_assert_eq(uvw__delta_send(l.tx, m7.p, m7.n, 1, &d, &dlen), 0);
  cr_assert_not_null(d);
  cr_assert_eq(view_delta(d, dlen).base, 1, "a full manifest restarts the versions");
  uint8_t *out;
  size_t olen;
  char rid[UVW__DELTA_MAX_ID + 1];
  cr_assert_eq(uvw__delta_recv(l.rx, d, dlen, &out, &olen, rid), 0, "%s", errmsg());
  cr_assert_eq(olen, m7.n);
  cr_assert_eq(memcmp(out, m7.p, olen), 0);
  uvw_free(out);
  uvw_free(d);
  cr_assert_eq(uvw__delta_book_count(l.tx), 1);
  cr_assert_eq(uvw__delta_book_count(l.rx), 1);

  buf_t all[] = {m1, m2, m3, m4, m5, m6, m7};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) uvw_free(all[i].p);
  link_free(&l);
  wt_leave(ctx);
}

/* ---- randomized differential ------------------------------------------------------ */

static uint64_t rng_state;
static uint64_t rnd(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1DULL;
}
static size_t rndn(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

#define DV_VARS 12
#define DV_BIG (DV_VARS - 1) /* the var that sometimes holds a value too big to keep */
static uvw_var_t *dv_vars[DV_VARS];

static uvw_value_t *random_value(void) {
  uint8_t b[32];
  size_t n = rndn(sizeof b);
  for (size_t i = 0; i < n; i++) b[i] = (uint8_t)rnd();
  switch (rndn(7)) {
    case 0:
      return uvw_value_nil();
    case 1: { /* one call per statement: a seed replays the same on every compiler */
      int64_t i = (int64_t)rnd();
      return uvw_value_int(i >> rndn(64));
    }
    case 2:
      return uvw_value_int((int64_t)rndn(5) - 2);
    case 3:
      return uvw_value_bytes(b, n);
    case 4:
      return uvw_value_bool((int)rndn(2));
    case 5:
      return uvw_value_double((double)(int64_t)rndn(1000) / 8.0);
    default: {
      char s[32];
      for (size_t i = 0; i < n; i++) s[i] = (char)('a' + rndn(26));
      return uvw_value_string(s, n);
    }
  }
}

/* A value-changing or state-changing op on the entered context. */
static void random_op(void) {
  uvw_var_t *v = dv_vars[rndn(DV_VARS - 1)];
  size_t r = rndn(100);
  if (r < 60) {
    wt_set(v, random_value());
  } else if (r < 80) {
    /* set + reset with the token: a pending reset if v was unbound, back to
     * its value otherwise */
    uvw_token_t *t;
    uvw_value_t *x = random_value();
    cr_assert_eq(uvw_set(v, x, &t), 0);
    cr_assert_eq(uvw_reset(v, t), 0);
    uvw_token_free(t);
    uvw_value_unref(x);
  } else if (r < 84) {
    char *big = malloc(UVW__DELTA_MAX_BASE_BYTES + 100);
    memset(big, 'B', UVW__DELTA_MAX_BASE_BYTES + 100);
    wt_set(dv_vars[DV_BIG], uvw_value_string(big, UVW__DELTA_MAX_BASE_BYTES + 1 + rndn(90)));
    free(big);
  } else if (r < 90) {
    wt_set(dv_vars[DV_BIG], random_value());
  } /* else: nothing changes */
}

/* The same chain in a fresh context holding a random non-empty subset of
 * ctx's entries (the others dropped). New reference. */
static uvw_context_t *drop_some(uvw_context_t *ctx) {
  unsigned char keep[64];
  size_t must = rndn(64);
  for (size_t i = 0; i < 64; i++) keep[i] = i == must || rndn(2);
  return remount(ctx, keep, 64);
}

/* The rebuilt bytes decode and mount to the sender's state: every var's
 * value and pending reset, and the mounted context encodes to the same
 * bytes again. */
static void check_mounts_like(const uint8_t *rebuilt, size_t len, uvw_context_t *sender, const buf_t *full,
                              unsigned scenario) {
  uvw_manifest_t *mm;
  cr_assert_eq(uvw_manifest_decode(rebuilt, len, &mm), 0, "scenario %u: decode: %s", scenario, errmsg());
  uvw_context_t *rc = uvw_context_new();
  cr_assert_eq(uvw_context_enter(rc), 0);
  cr_assert_eq(uvw_manifest_mount(mm), 0);
  cr_assert_eq(uvw_context_exit(rc), 0);
  uvw_manifest_free(mm);
  for (size_t i = 0; i < DV_VARS; i++) {
    uvw_value_t *a = uvw_context_lookup(sender, dv_vars[i]), *b = uvw_context_lookup(rc, dv_vars[i]);
    cr_assert((a == NULL) == (b == NULL) && (a == NULL || uvw_value_equal(a, b)),
              "scenario %u: var %zu differs after mount", scenario, i);
    const char *ns = uvw_var_namespace(dv_vars[i]), *name = uvw_var_name(dv_vars[i]);
    cr_assert_eq(!!uvw_context_has_pending_reset(sender, ns, name), !!uvw_context_has_pending_reset(rc, ns, name),
                 "scenario %u: var %zu pending reset differs", scenario, i);
  }
  char a[33], b[33];
  chain_id(sender, a);
  chain_id(rc, b);
  cr_assert_str_eq(a, b);
  buf_t again = encode_ctx(rc);
  cr_assert(again.n == full->n && memcmp(again.p, full->p, full->n) == 0, "scenario %u: re-encode differs",
            scenario);
  uvw_free(again.p);
  uvw_context_unref(rc);
}

#define DV_MAX_CHAINS 6

Test(delta, randomized_differential, .timeout = 600) {
  const char *env = getenv("UVWOOL_DELTA_SCENARIOS");
  unsigned scenarios = env ? (unsigned)strtoul(env, NULL, 10) : 2000;
  env = getenv("UVWOOL_DELTA_SEED");
  uint64_t seed = env ? strtoull(env, NULL, 0) : 0x5eedde17a0001ULL;
  printf("delta differential: seed 0x%llx (UVWOOL_DELTA_SEED, UVWOOL_DELTA_SCENARIOS to change)\n",
         (unsigned long long)seed);
  const char *ns1 = tu_namespace();
  char ns[2][64];
  snprintf(ns[0], sizeof ns[0], "%s", ns1);
  snprintf(ns[1], sizeof ns[1], "%s.z", ns1); /* sorts after ns[0] */
  for (int i = 0; i < DV_VARS; i++) {
    char name[8];
    snprintf(name, sizeof name, "%c%d", 'a' + (i * 5) % DV_VARS, i);
    dv_vars[i] = declare(ns[i % 3 == 2], name);
  }
  unsigned long manifests = 0, deltas = 0, unkept = 0, shrinks = 0, saturated = 0;
  for (unsigned sc = 0; sc < scenarios; sc++) {
    rng_state = seed + 0x9E3779B97F4A7C15ULL * (sc + 1);
    size_t nchains = 1 + rndn(DV_MAX_CHAINS - 1);
    /* S <= R; mostly equal, sometimes below; 0 now and then */
    size_t R = rndn(20) == 0 ? 0 : 1 + rndn(4), S = rndn(3) == 0 ? rndn(R + 1) : R;
    link_t l = link_new(S, R);
    size_t steps = 6 + rndn(30), shrink_at = rndn(2) ? rndn(steps) : steps;
    uvw_context_t *ctx[DV_MAX_CHAINS];
    int last_unkept[DV_MAX_CHAINS] = {0};
    for (size_t c = 0; c < nchains; c++) ctx[c] = uvw_context_new();
    for (size_t step = 0; step < steps; step++) {
      if (step == shrink_at) { /* both sides lower their bound at the same message */
        size_t S2 = rndn(S + 1), R2 = S2 + rndn(R - S2 + 1);
        uvw__delta_book_shrink(l.tx, S2);
        uvw__delta_book_shrink(l.rx, R2);
        S = S2 < S ? S2 : S;
        R = R2 < R ? R2 : R;
        shrinks++;
      }
      size_t c = rndn(nchains);
      size_t what = rndn(100);
      if (what < 8 && uvw_context_is_armed(ctx[c])) {
        uvw_context_t *fresh = drop_some(ctx[c]);
        uvw_context_unref(ctx[c]);
        ctx[c] = fresh;
      } else if (what < 11) { /* a new chain in this slot */
        uvw_context_unref(ctx[c]);
        ctx[c] = uvw_context_new();
      }
      cr_assert_eq(uvw_context_enter(ctx[c]), 0);
      if (last_unkept[c] && rndn(2)) wt_set(dv_vars[DV_BIG], uvw_value_int(0));
      for (size_t k = rndn(4); k > 0; k--) random_op();
      if (!uvw_context_is_armed(ctx[c])) {
        uvw_var_t *v = dv_vars[rndn(DV_VARS)];
        wt_set(v, random_value());
      }
      cr_assert_eq(uvw_context_exit(ctx[c]), 0);

      buf_t full = encode_ctx(ctx[c]);
      manifests++;
      last_unkept[c] = full.n > UVW__DELTA_MAX_BASE_BYTES;
      unkept += last_unkept[c];
      int allow = rndn(10) != 0;
      uint8_t *d = NULL;
      size_t dlen = 0;
      int rc = uvw__delta_send(l.tx, full.p, full.n, allow, &d, &dlen);
      cr_assert_eq(rc, 0, "scenario %u step %zu: send: %s", sc, step, errmsg());
      if (last_unkept[c]) cr_assert_null(d, "scenario %u: a manifest not keepable is never diffed", sc);
      if (d == NULL) {
        cr_assert_eq(uvw__delta_recv_full(l.rx, full.p, full.n), 0, "scenario %u: %s", sc, errmsg());
      } else {
        deltas++;
        cr_assert(allow);
        cr_assert_lt(dlen, full.n);
        uint8_t *out = NULL;
        size_t olen = 0;
        char rid[UVW__DELTA_MAX_ID + 1];
        rc = uvw__delta_recv(l.rx, d, dlen, &out, &olen, rid);
        cr_assert_eq(rc, 0, "scenario %u step %zu (S %zu R %zu): recv failed: %s", sc, step, S, R, errmsg());
        cr_assert(olen == full.n && memcmp(out, full.p, olen) == 0,
                  "scenario %u step %zu: rebuilt %zu bytes differ from the sender's %zu", sc, step, olen, full.n);
        check_mounts_like(out, olen, ctx[c], &full, sc);
        uvw_free(out);
        uvw_free(d);
      }
      size_t ntx = uvw__delta_book_count(l.tx), nrx = uvw__delta_book_count(l.rx);
      cr_assert_leq(ntx, S, "scenario %u: sender over its bound", sc);
      cr_assert_leq(nrx, R, "scenario %u: receiver over its bound", sc);
      cr_assert_leq(ntx, nrx, "scenario %u: the sender keeps a subset of the receiver's chains", sc);
      saturated += S > 0 && ntx == S;
      uvw_free(full.p);
    }
    for (size_t c = 0; c < nchains; c++) uvw_context_unref(ctx[c]);
    link_free(&l);
  }
  printf("delta differential: %u scenarios, %lu manifests (%lu deltas, %lu not keepable, %lu shrinks, "
         "%lu sends with the sender's book full)\n",
         scenarios, manifests, deltas, unkept, shrinks, saturated);
  cr_log_info("delta differential: %u scenarios, %lu manifests", scenarios, manifests);
  fflush(stdout);
  if (scenarios >= 100) {
    cr_assert_gt(deltas * 4, manifests, "deltas must be common enough to mean something");
    cr_assert_gt(unkept, 0);
    cr_assert_gt(saturated, manifests / 10, "evictions must happen");
  }
}

/* ---- hostile deltas --------------------------------------------------------------- */

typedef struct {
  link_t l;
  uvw_context_t *x, *y;
  char idx[33], idy[33];
  const char *ns;
  buf_t mx, mx2, my; /* X's base, X with b changed, Y's */
  span_t ex[8], ex2[8];
  size_t nx;
} hostile_t;

static void hostile_setup(hostile_t *h) {
  memset(h, 0, sizeof *h);
  h->ns = strdup(tu_namespace());
  uvw_var_t *a = declare(h->ns, "a"), *b = declare(h->ns, "b"), *c = declare(h->ns, "c"), *d = declare(h->ns, "d");
  h->x = uvw_context_new();
  set_in(h->x, a, uvw_value_cstring("alpha"));
  set_in(h->x, b, uvw_value_int(2));
  set_in(h->x, c, uvw_value_cstring("gamma"));
  set_in(h->x, d, uvw_value_int(4));
  h->y = uvw_context_new();
  set_in(h->y, a, uvw_value_cstring("y"));
  chain_id(h->x, h->idx);
  chain_id(h->y, h->idy);
  h->mx = encode_ctx(h->x);
  h->my = encode_ctx(h->y);
  set_in(h->x, b, uvw_value_int(22));
  h->mx2 = encode_ctx(h->x);
  h->nx = entries_of(&h->mx, h->ex, 8);
  cr_assert_eq(h->nx, 4);
  cr_assert_eq(entries_of(&h->mx2, h->ex2, 8), 4);
  h->l = link_new(8, 8);
  ship(&h->l, &h->mx, 1);
  ship(&h->l, &h->my, 1);
  cr_assert_eq(uvw__delta_book_count(h->l.rx), 2);
}

static void hostile_teardown(hostile_t *h) {
  link_free(&h->l);
  uvw_free(h->mx.p);
  uvw_free(h->mx2.p);
  uvw_free(h->my.p);
  uvw_context_unref(h->x);
  uvw_context_unref(h->y);
  free((char *)h->ns);
}

/* The peer asked for a resync of X: the sender forgets it, so X's next
 * manifest goes full and re-establishes it; the delta after that works. Ends
 * with both books at X = mx, version 1. */
static void resync_x(hostile_t *h) {
  uvw__delta_book_forget(h->l.tx, h->idx, 32);
  cr_assert_eq(ship(&h->l, &h->mx, 1), 0, "after a resync request the sender sends full");
  cr_assert_eq(uvw__delta_book_count(h->l.rx), 2, "the full manifest re-established X");
  cr_assert_gt(ship(&h->l, &h->mx2, 1), 0, "and the next delta applies again");
  uvw__delta_book_forget(h->l.tx, h->idx, 32);
  cr_assert_eq(ship(&h->l, &h->mx, 1), 0);
}

static void expect_malformed(hostile_t *h, const uint8_t *delta, size_t dlen, const char *reason,
                             const char *resync, size_t count_after, const char *what) {
  uint8_t *out = (uint8_t *)1;
  size_t olen = 99;
  char rid[UVW__DELTA_MAX_ID + 1];
  memset(rid, 'q', sizeof rid);
  uvw_clear_error();
  int rc = uvw__delta_recv(h->l.rx, delta, dlen, &out, &olen, rid);
  cr_assert_eq(rc, UVW_EMALFORMED, "%s: rc %d", what, rc);
  cr_assert_null(out, "%s", what);
  cr_assert_eq(olen, 0, "%s", what);
  const uvw_error_t *e = uvw_last_error();
  cr_assert_not_null(e, "%s: a detail", what);
  cr_assert_eq(uvw_error_code(e), UVW_EMALFORMED, "%s", what);
  const char *msg = uvw_error_message(e);
  cr_assert(msg != NULL && *msg, "%s: a message", what);
  cr_assert_not_null(strstr(msg, reason), "%s: message \"%s\" lacks \"%s\"", what, msg, reason);
  cr_assert_not_null(uvw_error_field(e, "reason"), "%s", what);
  cr_assert_not_null(strstr(uvw_error_field(e, "reason"), reason), "%s", what);
  cr_assert_str_eq(rid, resync, "%s: resync id", what);
  if (*resync) cr_assert_str_eq(uvw_error_field(e, "chain_id"), resync, "%s", what);
  cr_assert_eq(uvw__delta_book_count(h->l.rx), count_after, "%s: chains kept after", what);
  resync_x(h);
}

static void expect_malformed_pb(hostile_t *h, const pb_t *d, const char *reason, const char *resync,
                                size_t count_after, const char *what) {
  expect_malformed(h, d->b, d->n, reason, resync, count_after, what);
}

Test(delta, hostile_deltas_fail_cleanly_and_resync) {
  hostile_t h;
  hostile_setup(&h);
  static pb_t d;
  const char *ns = h.ns;
  /* Sanity: the hand-built form of the real delta works. */
  d.n = 0;
  pb_str(&d, 1, h.idx);
  pb_uint(&d, 2, 1);
  pb_span(&d, 3, h.ex2[1]);
  {
    uint8_t *out;
    size_t olen;
    char rid[UVW__DELTA_MAX_ID + 1];
    cr_assert_eq(uvw__delta_recv(h.l.rx, d.b, d.n, &out, &olen, rid), 0, "%s", errmsg());
    cr_assert(olen == h.mx2.n && memcmp(out, h.mx2.p, olen) == 0, "a hand-built delta rebuilds mx2");
    uvw_free(out);
    uvw__delta_book_forget(h.l.tx, h.idx, 32);
    ship(&h.l, &h.mx, 1);
  }

  /* A chain nothing is kept of. */
  d.n = 0;
  pb_str(&d, 1, "0123456789abcdef0123456789abcdef");
  pb_uint(&d, 2, 1);
  pb_span(&d, 3, h.ex2[1]);
  expect_malformed_pb(&h, &d, "no manifest of this chain is kept here", "0123456789abcdef0123456789abcdef", 2,
                      "missing chain");

  /* Against another version. */
  d.n = 0;
  pb_str(&d, 1, h.idx);
  pb_uint(&d, 2, 2);
  pb_span(&d, 3, h.ex2[1]);
  expect_malformed_pb(&h, &d, "against version 2, but version 1 is kept here", h.idx, 1, "wrong base version");
  d.n = 0;
  pb_str(&d, 1, h.idx);
  pb_uint(&d, 2, 0);
  expect_malformed_pb(&h, &d, "against version 0", h.idx, 1, "base version 0");

  /* Truncated: a real delta cut inside its last entry, inside its id, and
   * after one byte. */
  {
    uint8_t *real;
    size_t rlen;
    cr_assert_eq(uvw__delta_send(h.l.tx, h.mx2.p, h.mx2.n, 1, &real, &rlen), 0);
    cr_assert_not_null(real);
    expect_malformed(&h, real, rlen - 1, "not a protobuf message", h.idx, 1, "truncated in the last entry");
    expect_malformed(&h, real, 10, "not a protobuf message", "", 2, "truncated in the id");
    expect_malformed(&h, real, 1, "not a protobuf message", "", 2, "one byte");
    expect_malformed(&h, real, 0, "no chain id", "", 2, "empty");
    uvw_free(real);
  }

  /* Entry lists out of order, repeated. */
  d.n = 0;
  pb_str(&d, 1, h.idx);
  pb_uint(&d, 2, 1);
  pb_span(&d, 3, h.ex[2]);
  pb_span(&d, 3, h.ex[0]);
  expect_malformed_pb(&h, &d, "entries out of order or repeated", h.idx, 1, "unsorted changed");
  d.n = 0;
  pb_str(&d, 1, h.idx);
  pb_uint(&d, 2, 1);
  pb_span(&d, 3, h.ex2[1]);
  pb_span(&d, 3, h.ex2[1]);
  expect_malformed_pb(&h, &d, "entries out of order or repeated", h.idx, 1, "repeated changed");
  d.n = 0;
  pb_str(&d, 1, h.idx);
  pb_uint(&d, 2, 1);
  pb_key(&d, 4, ns, "c");
  pb_key(&d, 4, ns, "a");
  expect_malformed_pb(&h, &d, "entries out of order or repeated", h.idx, 1, "unsorted dropped");

  /* Dropped keys that do not apply. */
  d.n = 0;
  pb_str(&d, 1, h.idx);
  pb_uint(&d, 2, 1);
  pb_key(&d, 4, ns, "bb"); /* between b and c: not in the base */
  expect_malformed_pb(&h, &d, "a dropped entry the base does not hold", h.idx, 1, "dropped key not in base");
  d.n = 0;
  pb_str(&d, 1, h.idx);
  pb_uint(&d, 2, 1);
  pb_key(&d, 4, ns, "zz"); /* past the end */
  expect_malformed_pb(&h, &d, "a dropped entry the base does not hold", h.idx, 1, "dropped key past the end");
  d.n = 0;
  pb_str(&d, 1, h.idx);
  pb_uint(&d, 2, 1);
  pb_span(&d, 3, h.ex2[1]);
  pb_key(&d, 4, ns, "b");
  expect_malformed_pb(&h, &d, "an entry both changed and dropped", h.idx, 1, "changed and dropped");

  /* Fields that do not belong. */
  d.n = 0;
  pb_str(&d, 1, h.idx);
  pb_uint(&d, 2, 1);
  pb_uint(&d, 9, 1);
  expect_malformed_pb(&h, &d, "an unknown or repeated field", h.idx, 1, "unknown field");
  d.n = 0;
  pb_str(&d, 1, h.idx);
  pb_uint(&d, 2, 1);
  pb_str(&d, 1, h.idx);
  expect_malformed_pb(&h, &d, "an unknown or repeated field", h.idx, 1, "repeated id");
  d.n = 0;
  pb_str(&d, 1, h.idx);
  pb_uint(&d, 2, 1);
  pb_uint(&d, 2, 1);
  expect_malformed_pb(&h, &d, "an unknown or repeated field", h.idx, 1, "repeated base");
  d.n = 0;
  pb_str(&d, 1, h.idx);
  pb_str(&d, 2, "1");
  expect_malformed_pb(&h, &d, "an unknown or repeated field", h.idx, 1, "base of the wrong wire type");
  d.n = 0;
  pb_str(&d, 1, h.idx);
  pb_uint(&d, 2, 1);
  pb_uint(&d, 3, 1);
  expect_malformed_pb(&h, &d, "an unknown or repeated field", h.idx, 1, "changed of the wrong wire type");

  /* Missing fields, bad ids. */
  d.n = 0;
  pb_uint(&d, 2, 1);
  pb_span(&d, 3, h.ex2[1]);
  expect_malformed_pb(&h, &d, "no chain id", "", 2, "no id");
  d.n = 0;
  pb_str(&d, 1, h.idx);
  pb_span(&d, 3, h.ex2[1]);
  expect_malformed_pb(&h, &d, "no base version", h.idx, 1, "no base version");
  d.n = 0;
  pb_str(&d, 1, "has space");
  pb_uint(&d, 2, 1);
  expect_malformed_pb(&h, &d, "a chain id no side keeps", "", 2, "id with a space");
  d.n = 0;
  pb_str(&d, 1, "");
  pb_uint(&d, 2, 1);
  expect_malformed_pb(&h, &d, "a chain id no side keeps", "", 2, "empty id");
  {
    char longid[UVW__DELTA_MAX_ID + 2];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    d.n = 0;
    pb_str(&d, 1, longid);
    pb_uint(&d, 2, 1);
    expect_malformed_pb(&h, &d, "a chain id no side keeps", "", 2, "id over the limit");
  }

  /* Entries without a key. */
  d.n = 0;
  pb_str(&d, 1, h.idx);
  pb_uint(&d, 2, 1);
  {
    pb_t *e = calloc(1, sizeof *e);
    pb_str(e, 1, ns); /* namespace only */
    pb_bytes(&d, 3, e->b, e->n);
    free(e);
  }
  expect_malformed_pb(&h, &d, "an entry without one namespace and one name", h.idx, 1, "entry without name");
  d.n = 0;
  pb_str(&d, 1, h.idx);
  pb_uint(&d, 2, 1);
  {
    pb_t *e = calloc(1, sizeof *e);
    pb_str(e, 1, ns);
    pb_str(e, 2, "a");
    pb_str(e, 2, "a");
    pb_bytes(&d, 3, e->b, e->n);
    free(e);
  }
  expect_malformed_pb(&h, &d, "an entry without one namespace and one name", h.idx, 1, "entry naming twice");

  /* A result too large to keep. */
  d.n = 0;
  pb_str(&d, 1, h.idx);
  pb_uint(&d, 2, 1);
  {
    pb_t *e = calloc(1, sizeof *e), *val = calloc(1, sizeof *val);
    char *big = malloc(UVW__DELTA_MAX_BASE_BYTES);
    memset(big, 'x', UVW__DELTA_MAX_BASE_BYTES);
    pb_bytes(val, 5, big, UVW__DELTA_MAX_BASE_BYTES); /* string_value */
    pb_str(e, 1, ns);
    pb_str(e, 2, "zzz");
    pb_bytes(e, 3, val->b, val->n);
    pb_bytes(&d, 3, e->b, e->n);
    free(big);
    free(e);
    free(val);
  }
  expect_malformed_pb(&h, &d, "too large", h.idx, 1, "result too large");

  /* Y was never touched by any of it. */
  ship(&h.l, &h.my, 1);
  cr_assert_eq(uvw__delta_book_count(h.l.rx), 2);
  hostile_teardown(&h);
}

/* Every prefix of a real delta either fails cleanly or rebuilds a manifest
 * the book keeps; the book stays usable either way. */
Test(delta, every_truncation_of_a_delta) {
  hostile_t h;
  hostile_setup(&h);
  /* a delta with changed and dropped entries: X against a smaller state */
  wt_manifest_t w;
  wt_init(&w, h.idx);
  wt_int(wt_entry(&w, h.ns, "a", 1), 1);      /* changed */
  wt_int(wt_entry(&w, h.ns, "b", 1), 2);      /* as in the base */
  wt_string(wt_entry(&w, h.ns, "c", 1), "gamma"); /* as in the base */
  wt_string(wt_entry(&w, h.ns, "e", 1), "new"); /* new; d dropped */
  size_t len;
  uint8_t *raw = wt_pack_manifest(&w, &len);
  buf_t target = {uvw__malloc(len), len};
  memcpy(target.p, raw, len);
  free(raw);
  uint8_t *real;
  size_t rlen;
  link_t probe = link_new(2, 2);
  ship(&probe, &h.mx, 1);
  cr_assert_eq(uvw__delta_send(probe.tx, target.p, target.n, 1, &real, &rlen), 0);
  cr_assert_not_null(real);
  link_free(&probe);
  delta_view_t dv = view_delta(real, rlen);
  cr_assert_eq(dv.changed, 2);
  cr_assert_eq(dv.dropped, 1);
  size_t ok = 0;
  for (size_t cut = 0; cut < rlen; cut++) {
    uint8_t *out = NULL, *copy = malloc(cut ? cut : 1);
    memcpy(copy, real, cut);
    size_t olen;
    char rid[UVW__DELTA_MAX_ID + 1];
    int rc = uvw__delta_recv(h.l.rx, copy, cut, &out, &olen, rid);
    free(copy);
    if (rc == 0) {
      ok++;
      Uvwool__ChainManifest *m = wt_unpack(out, olen);
      cr_assert_str_eq(m->id, h.idx);
      uvwool__chain_manifest__free_unpacked(m, NULL);
      uvw_free(out);
      cr_assert_eq(uvw__delta_book_count(h.l.rx), 2);
    } else {
      cr_assert_eq(rc, UVW_EMALFORMED, "cut %zu", cut);
      cr_assert_null(out);
      cr_assert_neq(*uvw_error_message(uvw_last_error()), '\0');
      cr_assert(*rid == '\0' || strcmp(rid, h.idx) == 0, "cut %zu: resync id %s", cut, rid);
    }
    resync_x(&h);
  }
  cr_assert_gt(ok, 0, "the prefixes ending between fields are deltas too");
  cr_assert_lt(ok, rlen);
  uvw_free(real);
  uvw_free(target.p);
  hostile_teardown(&h);
}

/* ---- what is not keepable is never diffed ----------------------------------------- */

Test(delta, unkeepable_manifests_are_forgotten_on_both_sides) {
  const char *ns = tu_namespace();
  char nsb[64];
  snprintf(nsb, sizeof nsb, "%s", ns);
  uvw_var_t *big = declare(nsb, "big"), *small = declare(nsb, "small");
  uvw_context_t *ctx = uvw_context_new(), *other = uvw_context_new();
  set_in(ctx, small, uvw_value_int(1));
  set_in(other, small, uvw_value_int(2));
  char id[33];
  chain_id(ctx, id);
  link_t l = link_new(4, 4);
  buf_t m0 = encode_ctx(ctx), o0 = encode_ctx(other);
  ship(&l, &m0, 1);
  ship(&l, &o0, 1);

  /* Find the largest manifest that is still keepable and the smallest that
   * is not, by the length of `big`'s string. */
  char *s = malloc(UVW__DELTA_MAX_BASE_BYTES + 64);
  memset(s, 's', UVW__DELTA_MAX_BASE_BYTES + 64);
  size_t at_limit = 0, over = 0;
  for (size_t n = UVW__DELTA_MAX_BASE_BYTES - 120; n < UVW__DELTA_MAX_BASE_BYTES + 64 && !over; n++) {
    set_in(ctx, big, uvw_value_string(s, n));
    buf_t m = encode_ctx(ctx);
    if (m.n <= UVW__DELTA_MAX_BASE_BYTES) at_limit = n;
    if (m.n > UVW__DELTA_MAX_BASE_BYTES) over = n;
    uvw_free(m.p);
  }
  cr_assert(at_limit && over);

  /* At the limit: kept, so the next manifest is a delta. */
  set_in(ctx, big, uvw_value_string(s, at_limit));
  buf_t a = encode_ctx(ctx);
  cr_assert_leq(a.n, UVW__DELTA_MAX_BASE_BYTES);
  cr_assert_gt(ship(&l, &a, 1), 0, "%zu bytes: keepable, and the base is kept", a.n);
  set_in(ctx, small, uvw_value_int(3));
  buf_t a2 = encode_ctx(ctx);
  cr_assert_eq(a2.n, a.n);
  cr_assert_gt(ship(&l, &a2, 1), 0, "%zu bytes: diffed", a2.n);

  /* One byte over: no delta, and both books forget the chain. */
  set_in(ctx, big, uvw_value_string(s, over));
  buf_t b = encode_ctx(ctx);
  cr_assert_eq(b.n, UVW__DELTA_MAX_BASE_BYTES + 1, "the search found the first size over");
  uint8_t *d = (uint8_t *)1;
  size_t dlen = 7;
  cr_assert_eq(uvw__delta_send(l.tx, b.p, b.n, 1, &d, &dlen), 0);
  cr_assert_null(d, "a manifest over the limit is never diffed");
  cr_assert_eq(dlen, 0);
  cr_assert_eq(uvw__delta_book_count(l.tx), 1, "the sender forgot the chain");
  cr_assert_eq(uvw__delta_recv_full(l.rx, b.p, b.n), 0);
  cr_assert_eq(uvw__delta_book_count(l.rx), 1, "the receiver forgot the chain");
  /* Sent again unchanged: still no delta (nothing kept to diff against). */
  cr_assert_eq(ship(&l, &b, 1), 0);
  /* Back under the limit: full first (nothing kept), then deltas. */
  set_in(ctx, big, uvw_value_cstring("small again"));
  buf_t c = encode_ctx(ctx);
  cr_assert_eq(ship(&l, &c, 1), 0, "nothing kept: full");
  cr_assert_eq(uvw__delta_book_count(l.tx), 2);
  cr_assert_eq(uvw__delta_book_count(l.rx), 2);
  set_in(ctx, small, uvw_value_int(4));
  buf_t c2 = encode_ctx(ctx);
  cr_assert_gt(ship(&l, &c2, 1), 0);
  /* The other chain was never disturbed. */
  cr_assert_gt(ship(&l, &o0, 1), 0);

  /* Hand-built manifests of the chain that break the keepable rules: each
   * makes both sides forget it. */
  for (int kind = 0; kind < 7; kind++) {
    ship(&l, &c2, 0); /* both keep the chain again, version 1 */
    cr_assert_eq(uvw__delta_book_count(l.rx), 2);
    wt_manifest_t w;
    wt_init(&w, id);
    size_t len;
    uint8_t *raw;
    const char *what;
    if (kind == 0) {
      what = "entries out of order";
      wt_int(wt_entry(&w, nsb, "small", 1), 1);
      wt_int(wt_entry(&w, nsb, "big", 1), 1);
    } else if (kind == 1) {
      what = "a repeated entry";
      wt_int(wt_entry(&w, nsb, "big", 1), 1);
      wt_int(wt_entry(&w, nsb, "big", 1), 2);
    } else if (kind >= 5) {
      /* Decodes like the canonical manifest, but a rebuild would not give
       * these bytes back: not kept. */
      what = kind == 5 ? "the id after the entries" : "a length prefix longer than needed";
      wt_int(wt_entry(&w, nsb, "big", 1), 1);
    } else {
      what = kind == 2 ? "an unknown field" : kind == 3 ? "a repeated id" : "an entry without a name";
      wt_int(wt_entry(&w, nsb, "big", 1), 1);
      if (kind == 4) w.entries[0].name = NULL;
    }
    raw = wt_pack_manifest(&w, &len);
    pb_t *m = calloc(1, sizeof *m);
    memcpy(m->b, raw, len);
    m->n = len;
    free(raw);
    if (kind == 2) pb_uint(m, 7, 1);
    if (kind == 3) pb_str(m, 1, id);
    if (kind >= 5) { /* rewrite: the entries, then (5) or before them (6) the id */
      pb_t *r = calloc(1, sizeof *r);
      size_t i = 0;
      uvw__pb_field_t f;
      if (kind == 6) { /* the id's length as a two-byte varint */
        r->b[r->n++] = 0x0a;
        r->b[r->n++] = (uint8_t)(0x80 | strlen(id));
        r->b[r->n++] = 0x00;
        memcpy(r->b + r->n, id, strlen(id));
        r->n += strlen(id);
      }
      while (uvw__pb_next(m->b, m->n, &i, &f) == 1)
        if (f.number == 2) pb_bytes(r, 2, f.data, f.len);
      if (kind == 5) pb_str(r, 1, id);
      free(m);
      m = r;
      uvw_manifest_t *dec = NULL;
      cr_assert_eq(uvw_manifest_decode(m->b, m->n, &dec), 0, "%s: still a manifest", what);
      uvw_manifest_free(dec);
    }
    cr_assert_eq(uvw__delta_send(l.tx, m->b, m->n, 1, &d, &dlen), 0, "%s", what);
    cr_assert_null(d, "%s: never diffed", what);
    cr_assert_eq(uvw__delta_book_count(l.tx), 1, "%s: the sender forgot the chain", what);
    cr_assert_eq(uvw__delta_recv_full(l.rx, m->b, m->n), 0);
    cr_assert_eq(uvw__delta_book_count(l.rx), 1, "%s: the receiver forgot the chain", what);
    free(m);
  }
  /* Garbage and an id-less manifest change nothing kept. */
  ship(&l, &c2, 0);
  static const uint8_t junk[] = {0x0a, 0x7f, 'x'}, noid[] = {0x12, 0x00};
  cr_assert_eq(uvw__delta_send(l.tx, junk, sizeof junk, 1, &d, &dlen), 0);
  cr_assert_null(d);
  cr_assert_eq(uvw__delta_recv_full(l.rx, junk, sizeof junk), 0);
  cr_assert_eq(uvw__delta_send(l.tx, noid, sizeof noid, 1, &d, &dlen), 0);
  cr_assert_null(d);
  cr_assert_eq(uvw__delta_recv_full(l.rx, noid, sizeof noid), 0);
  cr_assert_eq(uvw__delta_recv_full(l.rx, NULL, 0), 0);
  cr_assert_eq(uvw__delta_book_count(l.tx), 2);
  cr_assert_eq(uvw__delta_book_count(l.rx), 2);
  cr_assert_gt(ship(&l, &c2, 1), 0, "the chain is still kept on both sides");

  buf_t all[] = {m0, o0, a, a2, b, c, c2};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) uvw_free(all[i].p);
  free(s);
  link_free(&l);
  uvw_context_unref(ctx);
  uvw_context_unref(other);
}

/* ---- LRU ---------------------------------------------------------------------------- */

/* A delta for chain id against version `base` changing nothing. */
static void empty_delta(pb_t *d, const char *id, uint64_t base) {
  d->n = 0;
  pb_str(d, 1, id);
  pb_uint(d, 2, base);
}

static int recv_ok(uvw__delta_book_t *rx, const pb_t *d) {
  uint8_t *out = NULL;
  size_t olen;
  char rid[UVW__DELTA_MAX_ID + 1];
  int rc = uvw__delta_recv(rx, d->b, d->n, &out, &olen, rid);
  uvw_free(out);
  return rc;
}

/* Whether the sender still diffs chain m (it is then kept): sends m again. */
static int tx_has(link_t *l, const buf_t *m) { return ship(l, m, 1) > 0; }

Test(delta, lru_evicts_the_same_chain_on_both_sides) {
  uvw_var_t *v = tu_var("v", NULL);
  uvw_context_t *c[3];
  buf_t m[3];
  char id[3][33];
  for (int i = 0; i < 3; i++) {
    c[i] = uvw_context_new();
    set_in(c[i], v, uvw_value_cstring("some value, long enough that an empty delta is smaller"));
    chain_id(c[i], id[i]);
    m[i] = encode_ctx(c[i]);
  }
  enum { A, B, C };
  link_t l = link_new(2, 2);
  cr_assert_eq(ship(&l, &m[A], 1), 0);
  cr_assert_eq(ship(&l, &m[B], 1), 0);
  cr_assert_gt(ship(&l, &m[A], 1), 0, "A kept, now the most recent (version 2)");
  cr_assert_eq(ship(&l, &m[C], 1), 0, "C is new: full, evicting B (least recent)");
  cr_assert_eq(uvw__delta_book_count(l.tx), 2);
  cr_assert_eq(uvw__delta_book_count(l.rx), 2);
  static pb_t d;
  empty_delta(&d, id[B], 1);
  uvw_clear_error();
  cr_assert_eq(recv_ok(l.rx, &d), UVW_EMALFORMED, "the receiver evicted B");
  cr_assert_not_null(strstr(errmsg(), "no manifest of this chain is kept here"));
  /* Sender: no delta for B; sending it evicts A (A at step 3, C at step 4). */
  cr_assert_eq(ship(&l, &m[B], 1), 0, "the sender evicted B too: full");
  empty_delta(&d, id[A], 2);
  cr_assert_eq(recv_ok(l.rx, &d), UVW_EMALFORMED, "then A went, on the receiver");
  cr_assert_eq(ship(&l, &m[A], 1), 0, "and on the sender");
  /* Now B, A are kept (C evicted); C gone on both. */
  empty_delta(&d, id[C], 1);
  cr_assert_eq(recv_ok(l.rx, &d), UVW_EMALFORMED);
  cr_assert_eq(uvw__delta_book_count(l.rx), 2, "a failed delta of a chain not kept forgets nothing");
  cr_assert(tx_has(&l, &m[B]));
  cr_assert(tx_has(&l, &m[A]));
  link_free(&l);

  /* A sender bound below the receiver's: every delta still applies. */
  l = link_new(1, 3);
  for (int round = 0; round < 6; round++)
    for (int i = 0; i < 3; i++) ship(&l, &m[(i * (round + 1)) % 3], 1);
  cr_assert_eq(uvw__delta_book_count(l.tx), 1);
  cr_assert_eq(uvw__delta_book_count(l.rx), 3);
  link_free(&l);

  /* Shrink: the least recent go first; a bound is never raised. */
  l = link_new(3, 3);
  for (int i = 0; i < 3; i++) ship(&l, &m[i], 1);
  ship(&l, &m[A], 1); /* order now B, C, A */
  uvw__delta_book_shrink(l.tx, 2);
  uvw__delta_book_shrink(l.rx, 2);
  cr_assert_eq(uvw__delta_book_count(l.rx), 2);
  empty_delta(&d, id[B], 1);
  cr_assert_eq(recv_ok(l.rx, &d), UVW_EMALFORMED, "B was least recent");
  uvw__delta_book_shrink(l.tx, 8);
  uvw__delta_book_shrink(l.rx, 8);
  cr_assert_eq(ship(&l, &m[B], 1), 0);
  cr_assert_eq(uvw__delta_book_count(l.tx), 2, "shrink never raises the bound");
  cr_assert_eq(uvw__delta_book_count(l.rx), 2);
  uvw__delta_book_shrink(l.tx, 0);
  uvw__delta_book_shrink(l.rx, 0);
  cr_assert_eq(uvw__delta_book_count(l.tx), 0);
  cr_assert_eq(ship(&l, &m[B], 1), 0);
  cr_assert_eq(ship(&l, &m[B], 1), 0, "a bound of 0 keeps nothing");
  cr_assert_eq(uvw__delta_book_count(l.rx), 0);
  link_free(&l);

  /* Forget: one chain, by id; an unknown id or NULL changes nothing. */
  l = link_new(3, 3);
  for (int i = 0; i < 3; i++) ship(&l, &m[i], 1);
  uvw__delta_book_forget(l.rx, id[B], 32);
  uvw__delta_book_forget(l.rx, id[B], 31);
  uvw__delta_book_forget(l.rx, "nope", 4);
  uvw__delta_book_forget(l.rx, NULL, 0);
  uvw__delta_book_forget(NULL, id[A], 32);
  cr_assert_eq(uvw__delta_book_count(l.rx), 2);
  empty_delta(&d, id[A], 1);
  cr_assert_eq(recv_ok(l.rx, &d), 0);
  link_free(&l);

  for (int i = 0; i < 3; i++) {
    uvw_free(m[i].p);
    uvw_context_unref(c[i]);
  }
  cr_assert_eq(uvw__delta_book_count(NULL), 0);
  uvw__delta_book_free(NULL);
}

Test(delta, bound_is_clamped) {
  uvw__delta_book_t *b = uvw__delta_book_new((size_t)-1);
  cr_assert_not_null(b);
  static pb_t m;
  for (unsigned i = 0; i < UVW__DELTA_MAX_CHAINS + 50; i++) {
    char id[16], name[8];
    snprintf(id, sizeof id, "chain%u", i);
    snprintf(name, sizeof name, "n");
    m.n = 0;
    pb_str(&m, 1, id);
    pb_key(&m, 2, "ns", name);
    cr_assert_eq(uvw__delta_recv_full(b, m.b, m.n), 0);
  }
  cr_assert_eq(uvw__delta_book_count(b), UVW__DELTA_MAX_CHAINS);
  /* the first 50 went (least recent), the last one is kept at version 1 */
  static pb_t d;
  empty_delta(&d, "chain0", 1);
  cr_assert_eq(recv_ok(b, &d), UVW_EMALFORMED);
  char last[16];
  snprintf(last, sizeof last, "chain%u", UVW__DELTA_MAX_CHAINS + 49);
  empty_delta(&d, last, 1);
  cr_assert_eq(recv_ok(b, &d), 0);
  uvw__delta_book_free(b);
}

/* ---- allocation failure ------------------------------------------------------------- */

typedef struct {
  link_t l;
  uvw_context_t *ctx;
  uvw_var_t *v[4];
  char id[33];
  buf_t m1, m2, m3, m4;
} alloc_fx_t;

/* m1: the chain now; m2, m3, m4: one more var changed each time. */
static void alloc_fx(alloc_fx_t *f, int *serial) {
  uvw_context_t *ctx = f->ctx;
  int k = ++*serial;
  f->m1 = encode_ctx(ctx);
  set_in(ctx, f->v[k % 4], uvw_value_int(k));
  f->m2 = encode_ctx(ctx);
  set_in(ctx, f->v[(k + 1) % 4], uvw_value_int(k));
  f->m3 = encode_ctx(ctx);
  set_in(ctx, f->v[(k + 2) % 4], uvw_value_int(-k));
  f->m4 = encode_ctx(ctx);
}

static void alloc_fx_free(alloc_fx_t *f) {
  uvw_free(f->m1.p);
  uvw_free(f->m2.p);
  uvw_free(f->m3.p);
  uvw_free(f->m4.p);
}

/* After whatever happened, the link works again: a resync (the sender
 * forgets the chain), a full manifest, then a delta that rebuilds exactly. */
static void resynced_works(alloc_fx_t *f, long n, const char *what) {
  uvw__delta_book_forget(f->l.tx, f->id, 32);
  cr_assert_eq(ship(&f->l, &f->m3, 1), 0, "%s, allocation %ld: full after resync", what, n);
  cr_assert_gt(ship(&f->l, &f->m4, 1), 0, "%s, allocation %ld: delta after resync", what, n);
}

/* The next delta from the sender either fails (the receiver lost the chain,
 * and says so) or rebuilds exactly what the sender has: never other bytes. */
static void next_delta_is_right_or_refused(alloc_fx_t *f, const buf_t *next, long n, const char *what) {
  uint8_t *d;
  size_t dlen;
  cr_assert_eq(uvw__delta_send(f->l.tx, next->p, next->n, 1, &d, &dlen), 0);
  if (d == NULL) {
    cr_assert_eq(uvw__delta_recv_full(f->l.rx, next->p, next->n), 0);
    return;
  }
  uint8_t *out = NULL;
  size_t olen = 0;
  char rid[UVW__DELTA_MAX_ID + 1];
  int rc = uvw__delta_recv(f->l.rx, d, dlen, &out, &olen, rid);
  uvw_free(d);
  if (rc == 0) {
    cr_assert(olen == next->n && memcmp(out, next->p, olen) == 0,
              "%s, allocation %ld: the next delta rebuilt other bytes than the sender's (%zu vs %zu)", what, n,
              olen, next->n);
    uvw_free(out);
  } else {
    cr_assert_eq(rc, UVW_EMALFORMED);
    cr_assert_str_eq(rid, f->id, "%s, allocation %ld: the refusal names the chain", what, n);
  }
}

Test(delta, allocation_failures) {
  alloc_fx_t f = {0};
  const char *ns = tu_namespace();
  char nsb[64];
  snprintf(nsb, sizeof nsb, "%s", ns);
  for (int i = 0; i < 4; i++) {
    char name[4] = {'a' + i, 0};
    f.v[i] = declare(nsb, name);
  }
  f.ctx = uvw_context_new();
  for (int i = 0; i < 4; i++) set_in(f.ctx, f.v[i], uvw_value_cstring("initial value of the variable"));
  chain_id(f.ctx, f.id);
  int serial = 0;
  /* another chain the books keep, so a chain is added and evicted too */
  uvw_context_t *other = uvw_context_new();
  set_in(other, f.v[0], uvw_value_int(1));
  buf_t mo = encode_ctx(other);

  tu_fail_alloc_after(1);
  cr_assert_null(uvw__delta_book_new(4));
  tu_restore_alloc();

  const char *what[] = {"delta_send (existing chain)", "delta_send (new chain)", "delta_recv", "delta_recv_full"};
  long fails[4] = {0};
  for (int op = 0; op < 4; op++) {
    long n;
    for (n = 1; n < 1000; n++) {
      alloc_fx(&f, &serial);
      f.l = link_new(2, 2);
      ship(&f.l, &mo, 1);
      if (op != 1) ship(&f.l, &f.m1, 1); /* both keep X at version 1 */
      uint8_t *d = NULL, *out = NULL;
      size_t dlen = 0, olen = 0;
      char rid[UVW__DELTA_MAX_ID + 1] = "";
      int rc;
      if (op == 2) {
        cr_assert_eq(uvw__delta_send(f.l.tx, f.m2.p, f.m2.n, 1, &d, &dlen), 0);
        cr_assert_not_null(d);
      }
      size_t ntx = uvw__delta_book_count(f.l.tx), nrx = uvw__delta_book_count(f.l.rx);
      uvw_clear_error();
      tu_fail_alloc_after(n);
      if (op <= 1)
        rc = uvw__delta_send(f.l.tx, f.m2.p, f.m2.n, 1, &d, &dlen);
      else if (op == 2)
        rc = uvw__delta_recv(f.l.rx, d, dlen, &out, &olen, rid);
      else
        rc = uvw__delta_recv_full(f.l.rx, f.m2.p, f.m2.n);
      tu_restore_alloc();
      if (rc != 0) {
        fails[op]++;
        cr_assert_eq(rc, UVW_ENOMEM, "%s, allocation %ld: rc %d", what[op], n, rc);
        cr_assert_eq(uvw_error_code(uvw_last_error()), UVW_ENOMEM, "%s, allocation %ld: detail", what[op], n);
      }
      if (op <= 1) {
        if (rc != 0) {
          cr_assert_null(d, "%s, allocation %ld: no delta on failure", what[op], n);
          cr_assert_eq(uvw__delta_book_count(f.l.tx), ntx - (op == 0), "%s, allocation %ld: chain forgotten",
                       what[op], n);
          /* the full manifest goes out instead */
          cr_assert_eq(uvw__delta_recv_full(f.l.rx, f.m2.p, f.m2.n), 0);
        } else if (d != NULL) {
          cr_assert_eq(uvw__delta_recv(f.l.rx, d, dlen, &out, &olen, rid), 0);
          cr_assert(olen == f.m2.n && memcmp(out, f.m2.p, olen) == 0);
        } else {
          cr_assert_eq(uvw__delta_recv_full(f.l.rx, f.m2.p, f.m2.n), 0);
        }
        next_delta_is_right_or_refused(&f, &f.m3, n, what[op]);
      } else if (op == 2) {
        if (rc != 0) {
          cr_assert_null(out);
          cr_assert_str_eq(rid, f.id, "%s, allocation %ld: resync id", what[op], n);
          cr_assert_eq(uvw__delta_book_count(f.l.rx), nrx - 1, "%s, allocation %ld: chain forgotten", what[op], n);
        } else {
          cr_assert(olen == f.m2.n && memcmp(out, f.m2.p, olen) == 0);
        }
      } else {
        /* The sender sent m2 full (not as a delta) and kept it as version 1. */
        uint8_t *unused;
        size_t ulen;
        cr_assert_eq(uvw__delta_send(f.l.tx, f.m2.p, f.m2.n, 0, &unused, &ulen), 0);
        size_t nrx_after = uvw__delta_book_count(f.l.rx);
        next_delta_is_right_or_refused(&f, &f.m3, n, what[op]);
        if (rc != 0)
          cr_assert_eq(nrx_after, nrx - 1,
                       "%s, allocation %ld: the chain must be forgotten (the header promises it), or the "
                       "receiver keeps an older version 1 than the sender's",
                       what[op], n);
      }
      uvw_free(d);
      uvw_free(out);
      resynced_works(&f, n, what[op]);
      link_free(&f.l);
      alloc_fx_free(&f);
      if (rc == 0) break;
    }
    cr_assert_lt(n, 1000, "%s never succeeded", what[op]);
    cr_assert_gt(fails[op], 0, "%s: some allocation was failed", what[op]);
  }
  printf("delta allocation failures: send %ld+%ld, recv %ld, recv_full %ld failing points\n", fails[0], fails[1],
         fails[2], fails[3]);
  uvw_free(mo.p);
  uvw_context_unref(f.ctx);
  uvw_context_unref(other);
}
