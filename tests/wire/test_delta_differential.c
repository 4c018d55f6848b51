/* Delta manifests, the randomized differential test: random scenarios of
 * sets, resets, drops, new chains, unkeepable values, bound changes and
 * evictions; every rebuilt manifest equals the sender's bytes and mounts to
 * the sender's state. UVWOOL_DELTA_SEED and UVWOOL_DELTA_SCENARIOS replay or
 * widen a run. */
#include "deltatest.h"

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
    dv_vars[i] = wt_declare(ns[i % 3 == 2], name);
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
