/* Delta manifests, the books' rules: a sender book and a receiver book fed
 * the same real manifests agree byte for byte over rounds of changes; a
 * manifest too big to keep is never diffed and both sides forget its chain;
 * least-recently-used eviction drops the same chain on both sides; the bound
 * is clamped. */
#include "deltatest.h"

/* ---- round trip ------------------------------------------------------------------- */

Test(delta, round_trip_over_rounds) {
  const char *ns = tu_namespace();
  char ns_buf[64];
  snprintf(ns_buf, sizeof ns_buf, "%s", ns);
  uvw_var_t *v[12];
  char name[8];
  for (int i = 0; i < 12; i++) {
    snprintf(name, sizeof name, "v%02d", i);
    v[i] = wt_declare(ns_buf, name);
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

/* ---- what is not keepable is never diffed ----------------------------------------- */

Test(delta, unkeepable_manifests_are_forgotten_on_both_sides) {
  const char *ns = tu_namespace();
  char nsb[64];
  snprintf(nsb, sizeof nsb, "%s", ns);
  uvw_var_t *big = wt_declare(nsb, "big"), *small = wt_declare(nsb, "small");
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
