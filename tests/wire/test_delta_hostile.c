/* Delta manifests, hostile and broken deltas: each fails with
 * UVW_EMALFORMED, a reason and the chain's resync id, leaves the other
 * chains alone, and the next full manifest re-establishes the chain; every
 * prefix of a real delta fails cleanly or rebuilds a manifest the book
 * keeps. */
#include "deltatest.h"

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
  uvw_var_t *a = wt_declare(h->ns, "a"), *b = wt_declare(h->ns, "b"), *c = wt_declare(h->ns, "c"), *d = wt_declare(h->ns, "d");
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
