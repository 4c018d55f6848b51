/* Delta manifests under allocation failure: each allocation of a book, a
 * send and a receive fails in turn; the call returns UVW_ENOMEM with a
 * detail, the chain is forgotten (other bytes are never rebuilt) and a
 * resync makes the link work again. */
#include "deltatest.h"

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
    f.v[i] = wt_declare(nsb, name);
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
