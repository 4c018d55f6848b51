/* libFuzzer target: a ManifestDelta (wire_delta.h) arriving at a receiver
 * book that keeps two real manifests (chains FUZZ_ID_A and FUZZ_ID_B, built
 * once through the encoder), on a fresh book per input.
 *
 * Invariants (abort() when broken):
 *   - a refused delta returns UVW_EMALFORMED with a detail, no buffer, a
 *     resync id of at most UVW__DELTA_MAX_ID bytes; a named kept chain is
 *     forgotten, nothing else is; a full manifest re-establishes it;
 *   - an applied delta rebuilds a keepable ChainManifest of the chain it
 *     names, kept at the next version (the same delta again is refused);
 *     a sender book holding the same base diffs the rebuilt bytes into a
 *     delta that rebuilds exactly them again.
 * A rebuilt manifest is then decoded, mounted and re-encoded like any full
 * one: its entries are the delta's bytes, which need not decode (that is
 * the full decoder's job), so a decode failure is no violation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "pbscan.h"
#include "wire_delta.h"
#include "wire_int.h"

#define FUZZ_NS "fuzz.delta"
#define FUZZ_ID_A "0123456789abcdef0123456789abcdef"
#define FUZZ_ID_B "fedcba9876543210fedcba9876543210"

static const char *const fuzz_ids[2] = {FUZZ_ID_A, FUZZ_ID_B};
static uint8_t *fuzz_base[2];
static size_t fuzz_base_len[2];
static uvw_var_t *fuzz_vars[6]; /* a..f */

static void violated(const char *why) {
  fprintf(stderr, "fuzz_delta: invariant violated: %s\n", why);
  abort();
}

/* Chain `id` with one entry a = "seed", armed by mounting it into a fresh
 * context (entered; the caller exits it). */
static uvw_context_t *enter_chain(const char *id) {
  uint8_t value[16], entry[64], m[128];
  size_t vn = uvw__pb_put_bytes(value, 5, "seed", 4); /* Value.string_value */
  size_t en = uvw__pb_put_bytes(entry, 1, FUZZ_NS, strlen(FUZZ_NS));
  en += uvw__pb_put_bytes(entry + en, 2, "a", 1);
  en += uvw__pb_put_bytes(entry + en, 3, value, vn);
  size_t mn = uvw__pb_put_bytes(m, 1, id, strlen(id));
  mn += uvw__pb_put_bytes(m + mn, 2, entry, en);
  uvw_manifest_t *mm = NULL;
  if (uvw_manifest_decode(m, mn, &mm) != 0) violated("setup: decode");
  uvw_context_t *ctx = uvw_context_new();
  if (ctx == NULL) violated("setup: context");
  if (uvw_context_enter(ctx) != 0 || uvw_manifest_mount(mm) != 0) violated("setup: mount");
  uvw_manifest_free(mm);
  return ctx;
}

static void put(uvw_var_t *v, uvw_value_t *x) {
  if (x == NULL || uvw_set(v, x, NULL) != 0) violated("setup: set");
  uvw_value_unref(x);
}

static void encode_base(int which, uvw_context_t *ctx) {
  void *p;
  if (uvw__manifest_encode(NULL, 0, &p, &fuzz_base_len[which]) != 0 || p == NULL) violated("setup: encode");
  fuzz_base[which] = p;
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
}

/* Builds the two bases once (deterministic bytes: the committed seeds are
 * deltas against them). */
static void fuzz_delta_setup(void) {
  static int done;
  if (done) return;
  done = 1;
  fuzz_setup();
  for (int i = 0; i < 6; i++) {
    char name[2] = {(char)('a' + i), 0};
    if (uvw_var_declare(FUZZ_NS, name, NULL, &fuzz_vars[i]) != 0) violated("setup: declare");
  }
  /* A: a string, an int, bytes, nil, and a pending reset (e). */
  uvw_context_t *ctx = enter_chain(FUZZ_ID_A);
  put(fuzz_vars[0], uvw_value_cstring("alpha"));
  put(fuzz_vars[1], uvw_value_int(2));
  put(fuzz_vars[2], uvw_value_bytes("\0\1\2\3", 4));
  put(fuzz_vars[3], uvw_value_nil());
  uvw_token_t *t;
  uvw_value_t *x = uvw_value_int(0);
  if (uvw_set(fuzz_vars[4], x, &t) != 0 || uvw_reset(fuzz_vars[4], t) != 0) violated("setup: reset");
  uvw_token_free(t);
  uvw_value_unref(x);
  encode_base(0, ctx);
  /* B: two entries. */
  ctx = enter_chain(FUZZ_ID_B);
  put(fuzz_vars[0], uvw_value_cstring("beta"));
  put(fuzz_vars[5], uvw_value_bool(1));
  encode_base(1, ctx);
}

/* A book holding both bases at version 1. */
static uvw__delta_book_t *book_with(size_t bound, int which) {
  uvw__delta_book_t *b = uvw__delta_book_new(bound);
  if (b == NULL) violated("book_new");
  for (int i = 0; i < 2; i++)
    if ((which & (1 << i)) && uvw__delta_recv_full(b, fuzz_base[i], fuzz_base_len[i]) != 0) violated("recv_full");
  return b;
}

/* Which base chain a ChainManifest names (its one field 1), or -1. */
static int chain_of(const uint8_t *m, size_t n) {
  size_t i = 0;
  uvw__pb_field_t f;
  int found = -1, ids = 0;
  while (uvw__pb_next(m, n, &i, &f) == 1)
    if (f.number == 1) {
      ids++;
      for (int k = 0; k < 2; k++)
        if (f.type == UVW__PB_BYTES && f.len == 32 && memcmp(f.data, fuzz_ids[k], 32) == 0) found = k;
    }
  return ids == 1 ? found : -1;
}

static void check_applied(uvw__delta_book_t *rx, const uint8_t *data, size_t size, const uint8_t *full,
                          size_t flen) {
  if (full == NULL || flen == 0 || flen > UVW__DELTA_MAX_BASE_BYTES) violated("rebuilt: no buffer or too large");
  if (uvw__delta_book_count(rx) != 2) violated("an applied delta keeps its chain and only it");
  int k = chain_of(full, flen);
  if (k < 0) violated("rebuilt: not a manifest of one of the kept chains");
  /* keepable: a book of its own keeps it */
  uvw__delta_book_t *solo = book_with(1, 0);
  if (uvw__delta_recv_full(solo, full, flen) != 0 || uvw__delta_book_count(solo) != 1)
    violated("rebuilt: not keepable");
  uvw__delta_book_free(solo);
  /* the sender's side of the same step gives back the same bytes */
  uvw__delta_book_t *tx = uvw__delta_book_new(1), *rx2 = book_with(1, 1 << k);
  uint8_t *d = NULL, *again = NULL;
  size_t dlen, alen;
  char rid[UVW__DELTA_MAX_ID + 1];
  if (tx == NULL || uvw__delta_send(tx, fuzz_base[k], fuzz_base_len[k], 1, &d, &dlen) != 0 || d != NULL)
    violated("sender: base");
  if (uvw__delta_send(tx, full, flen, 1, &d, &dlen) != 0) violated("sender: rebuilt");
  if (d != NULL) {
    if (dlen >= flen) violated("sender: a delta not smaller than the full manifest");
    if (uvw__delta_recv(rx2, d, dlen, &again, &alen, rid) != 0) violated("sender's delta refused by its receiver");
    if (alen != flen || memcmp(again, full, flen) != 0) violated("sender's delta rebuilds other bytes");
    uvw_free(again);
    uvw_free(d);
  }
  uvw__delta_book_free(tx);
  uvw__delta_book_free(rx2);
  /* the chain moved on a version: the same delta again is refused */
  if (uvw__delta_recv(rx, data, size, &again, &alen, rid) != UVW_EMALFORMED || again != NULL)
    violated("the same delta applied twice");
  if (strcmp(rid, fuzz_ids[k]) != 0 || uvw__delta_book_count(rx) != 1) violated("replayed delta: resync id/book");
  /* the rebuilt manifest through the full decoder */
  uvw_manifest_t *m = NULL;
  if (uvw_manifest_decode(full, flen, &m) == 0) {
    fuzz_mount_and_encode(m);
    uvw_manifest_free(m);
  }
}

static void check_refused(uvw__delta_book_t *rx, int rc, const uint8_t *full, size_t flen, const char *rid) {
  if (rc != UVW_EMALFORMED && rc != UVW_ENOMEM) violated("refused with an unexpected code");
  if (full != NULL || flen != 0) violated("refused but a buffer returned");
  const uvw_error_t *e = uvw_last_error();
  const char *msg = e ? uvw_error_message(e) : NULL;
  if (e == NULL || uvw_error_code(e) != rc || msg == NULL || *msg == '\0') violated("refused without a detail");
  if (memchr(rid, '\0', UVW__DELTA_MAX_ID + 1) == NULL) violated("resync id not terminated");
  int k = -1;
  for (int i = 0; i < 2; i++)
    if (strcmp(rid, fuzz_ids[i]) == 0) k = i;
  if (uvw__delta_book_count(rx) != (k >= 0 ? 1u : 2u)) violated("refused: the named chain (only) is forgotten");
  if (k >= 0) { /* resync: a full manifest re-establishes it */
    if (uvw__delta_recv_full(rx, fuzz_base[k], fuzz_base_len[k]) != 0 || uvw__delta_book_count(rx) != 2)
      violated("resync");
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_delta_setup();
  uvw__delta_book_t *rx = book_with(4, 3);
  if (uvw__delta_book_count(rx) != 2) violated("the bases are keepable");
  uint8_t *full = (uint8_t *)&full; /* must be overwritten */
  size_t flen = 1;
  char rid[UVW__DELTA_MAX_ID + 1];
  memset(rid, 'x', sizeof rid);
  uvw_clear_error();
  int rc = uvw__delta_recv(rx, data, size, &full, &flen, rid);
  if (rc == 0)
    check_applied(rx, data, size, full, flen);
  else
    check_refused(rx, rc, full, flen, rid);
  if (rc == 0) uvw_free(full);
  uvw__delta_book_free(rx);
  return 0;
}
