/* Micro-benchmark of the wire layer (the static library: delta manifests
 * are internal).
 *
 * For manifests of 1, 8 and 64 variables (alternately string and int
 * values): encode, decode, encode+decode (the target: 8 variables
 * in about a microsecond), the encoded size, and mount of a decoded
 * manifest into a fresh (unarmed) context vs merged onto an armed one.
 * Then delta manifests (wire_delta.h) for the same manifest: the sender's
 * diff and the receiver's rebuild of an unchanged manifest, the same with
 * one variable changed, and the whole way of one manifest with deltas
 * (encode + diff + rebuild + decode), against the 1 us goal.
 *
 * The goal row is measured twice: a context that changes every time (a set
 * before the encode, so the encoder writes the whole manifest, then a
 * decode), and an unchanged one as a connection carries it (the encode
 * copies the map's memo, the connection's cache copies the decoded
 * manifest).
 *
 * Method as bench_core: each case runs in a loop calibrated to ~20 ms,
 * REPEATS rounds, minimum reported (median alongside); return codes are
 * checked so an error path is never timed. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "uvwool.h"
#include "wire_delta.h"
#include "wire_frame.h"

#define REPEATS 5
#define TARGET_RUN_NS 20e6

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int failed;
#define CHECK(x)                                                                              \
  do {                                                                                        \
    if ((x) != 0 && !failed++) /* the first failure only */                                   \
      fprintf(stderr, "bench_wire: %s failed: %s\n", #x, uvw_error_message(uvw_last_error())); \
  } while (0)

typedef struct {
  uvw_context_t *src;     /* the armed context to encode */
  void *bytes;            /* its manifest */
  size_t len;
  uvw_manifest_t *decoded;
  uvw_context_t *merge;   /* an armed receiver with other variables */
  void *changed;          /* the manifest of src with its first variable changed */
  size_t changed_len;
  uvw__delta_book_t *sent, *received; /* both hold src's manifest */
  uvw__delta_book_t *diff_only;       /* a sender's book whose deltas go nowhere */
  size_t delta_len;       /* the delta of an unchanged manifest */
  int flip;               /* op_delta_one_changed left the changed manifest in the books */
  uvw_context_t *changing; /* a copy of src whose first variable each op_set_* rebinds */
  uvw_var_t *first;
  uvw_value_t *alt[2];
  uvw__mcache_t *cache;    /* holds src's manifest, as a connection's would */
} fixture_t;

typedef void (*op_fn)(fixture_t *f, long iters);

static void op_encode(fixture_t *f, long iters) {
  for (long i = 0; i < iters; i++) {
    void *p;
    size_t n;
    CHECK(uvw_manifest_encode(f->src, &p, &n));
    uvw_free(p);
  }
}
static void op_decode(fixture_t *f, long iters) {
  for (long i = 0; i < iters; i++) {
    uvw_manifest_t *m;
    CHECK(uvw_manifest_decode(f->bytes, f->len, &m));
    uvw_manifest_free(m);
  }
}
static void op_roundtrip(fixture_t *f, long iters) {
  for (long i = 0; i < iters; i++) {
    void *p;
    size_t n;
    uvw_manifest_t *m;
    CHECK(uvw_manifest_encode(f->src, &p, &n));
    CHECK(uvw_manifest_decode(p, n, &m));
    uvw_manifest_free(m);
    uvw_free(p);
  }
}
/* A set (in place, which drops the map's memo), then the encode of the
 * whole manifest and its decode: a context that changes every time. */
static void op_set_roundtrip(fixture_t *f, long iters) {
  uvw_context_enter(f->changing);
  for (long i = 0; i < iters; i++) {
    void *p;
    size_t n;
    uvw_manifest_t *m;
    CHECK(uvw_set(f->first, f->alt[i & 1], NULL));
    CHECK(uvw_manifest_encode(NULL, &p, &n));
    CHECK(uvw_manifest_decode(p, n, &m));
    uvw_manifest_free(m);
    uvw_free(p);
  }
  uvw_context_exit(f->changing);
}
static void op_set_encode(fixture_t *f, long iters) {
  uvw_context_enter(f->changing);
  for (long i = 0; i < iters; i++) {
    void *p;
    size_t n;
    CHECK(uvw_set(f->first, f->alt[i & 1], NULL));
    CHECK(uvw_manifest_encode(NULL, &p, &n));
    uvw_free(p);
  }
  uvw_context_exit(f->changing);
}
/* An unchanged context as a connection carries it: the encode (the memo)
 * and the receiver's cached decode. */
static void op_cached_roundtrip(fixture_t *f, long iters) {
  for (long i = 0; i < iters; i++) {
    void *p;
    size_t n;
    uvw_manifest_t *m;
    CHECK(uvw_manifest_encode(f->src, &p, &n));
    CHECK(uvw__mcache_decode(f->cache, p, n, 64, &m, NULL));
    uvw_manifest_free(m);
    uvw_free(p);
  }
}
/* Fresh: a new unarmed context each time (its creation is included, and is
 * a malloc/free pair: a few tens of ns). */
static void op_mount_fresh(fixture_t *f, long iters) {
  for (long i = 0; i < iters; i++) {
    uvw_context_t *c = uvw_context_new();
    uvw_context_enter(c);
    CHECK(uvw_manifest_mount(f->decoded));
    uvw_context_exit(c);
    uvw_context_unref(c);
  }
}
/* Merged: onto a copy of an armed receiver (the copy is O(1)). */
static void op_mount_merged(fixture_t *f, long iters) {
  for (long i = 0; i < iters; i++) {
    uvw_context_t *c = uvw_context_copy(f->merge);
    uvw_context_enter(c);
    CHECK(uvw_manifest_mount(f->decoded));
    uvw_context_exit(c);
    uvw_context_unref(c);
  }
}

/* The sender's side of one manifest: diff against the book (which holds
 * the same manifest: the delta says "nothing changed"). */
static void op_delta_send(fixture_t *f, long iters) {
  for (long i = 0; i < iters; i++) {
    uint8_t *d;
    size_t n;
    CHECK(uvw__delta_send(f->diff_only, f->bytes, f->len, 1, &d, &n));
    if (d == NULL) failed = 1;
    uvw_free(d);
  }
}
/* Both sides, the manifest unchanged: diff, then rebuild. */
static void op_delta_both(fixture_t *f, long iters) {
  char id[UVW__DELTA_MAX_ID + 1];
  for (long i = 0; i < iters; i++) {
    uint8_t *d = NULL, *full = NULL;
    size_t n, flen;
    CHECK(uvw__delta_send(f->sent, f->bytes, f->len, 1, &d, &n));
    CHECK(uvw__delta_recv(f->received, d, n, &full, &flen, id));
    uvw_free(d);
    uvw_free(full);
  }
}
/* Both sides, one variable changing back and forth (f->flip: which one
 * the books hold, so every call diffs against the other). */
static void op_delta_one_changed(fixture_t *f, long iters) {
  char id[UVW__DELTA_MAX_ID + 1];
  for (long i = 0; i < iters; i++) {
    uint8_t *d = NULL, *full = NULL;
    size_t n, flen;
    f->flip = !f->flip;
    const void *m = f->flip ? f->changed : f->bytes;
    size_t len = f->flip ? f->changed_len : f->len;
    CHECK(uvw__delta_send(f->sent, m, len, 1, &d, &n));
    if (d == NULL) /* not smaller than the manifest (1 variable): it goes whole */
      CHECK(uvw__delta_recv_full(f->received, m, len));
    else
      CHECK(uvw__delta_recv(f->received, d, n, &full, &flen, id));
    uvw_free(d);
    uvw_free(full);
  }
}

/* The whole way of an unchanged manifest with deltas: encode, diff,
 * rebuild, decode (what one direction of a dispatch costs the two ends). */
static void op_delta_roundtrip(fixture_t *f, long iters) {
  char id[UVW__DELTA_MAX_ID + 1];
  if (f->flip) op_delta_one_changed(f, 1); /* back to the unchanged manifest */
  for (long i = 0; i < iters; i++) {
    void *p;
    uint8_t *d = NULL, *full = NULL;
    size_t n, dn, flen;
    uvw_manifest_t *m;
    CHECK(uvw_manifest_encode(f->src, &p, &n));
    CHECK(uvw__delta_send(f->sent, p, n, 1, &d, &dn));
    CHECK(uvw__delta_recv(f->received, d, dn, &full, &flen, id));
    CHECK(uvw_manifest_decode(full, flen, &m));
    uvw_manifest_free(m);
    uvw_free(full);
    uvw_free(d);
    uvw_free(p);
  }
}

static double measure(op_fn op, fixture_t *f, double *median) {
  long iters = 1;
  for (;;) { /* calibrate */
    double t0 = now_ns();
    op(f, iters);
    double dt = now_ns() - t0;
    if (dt > TARGET_RUN_NS / 10 || iters > (1L << 30)) {
      iters = (long)(iters * (TARGET_RUN_NS / (dt > 1 ? dt : 1)));
      if (iters < 1) iters = 1;
      break;
    }
    iters *= 4;
  }
  double r[REPEATS];
  for (int k = 0; k < REPEATS; k++) {
    double t0 = now_ns();
    op(f, iters);
    r[k] = (now_ns() - t0) / iters;
  }
  for (int a = 0; a < REPEATS; a++)
    for (int b = a + 1; b < REPEATS; b++)
      if (r[b] < r[a]) {
        double t = r[a];
        r[a] = r[b];
        r[b] = t;
      }
  *median = r[REPEATS / 2];
  return r[0];
}

static void setup(fixture_t *f, int nvars, const char *ns) {
  f->src = uvw_context_new();
  f->merge = uvw_context_new();
  uvw_context_enter(f->src);
  for (int i = 0; i < nvars; i++) {
    char name[32];
    snprintf(name, sizeof name, "var%03d", i);
    uvw_var_t *v;
    CHECK(uvw_var_declare(ns, name, NULL, &v));
    uvw_value_t *val = i % 2 ? uvw_value_int(1000 + i) : uvw_value_cstring("a-typical-string-value");
    CHECK(uvw_set(v, val, NULL));
    uvw_value_unref(val);
  }
  uvw_context_exit(f->src);
  /* The merge receiver: armed, half of its variables overlap. */
  uvw_context_enter(f->merge);
  for (int i = 0; i < nvars; i += 2) {
    char name[32];
    snprintf(name, sizeof name, "var%03d", i);
    uvw_value_t *val = uvw_value_cstring("receiver");
    CHECK(uvw_set(uvw_var_find(ns, name), val, NULL));
    uvw_value_unref(val);
  }
  uvw_context_exit(f->merge);
  CHECK(uvw_manifest_encode(f->src, &f->bytes, &f->len));
  CHECK(uvw_manifest_decode(f->bytes, f->len, &f->decoded));
  /* The changed manifest: a copy of src, its first variable rebound. */
  uvw_context_t *c = uvw_context_copy(f->src);
  uvw_context_enter(c);
  char name[32];
  snprintf(name, sizeof name, "var%03d", 0);
  uvw_value_t *val = uvw_value_cstring("another-string-value!!");
  CHECK(uvw_set(uvw_var_find(ns, name), val, NULL));
  uvw_value_unref(val);
  uvw_context_exit(c);
  CHECK(uvw_manifest_encode(c, &f->changed, &f->changed_len));
  uvw_context_unref(c);
  /* Both books hold src's manifest, as after one full manifest went out. */
  f->sent = uvw__delta_book_new(64);
  f->received = uvw__delta_book_new(64);
  f->diff_only = uvw__delta_book_new(64);
  uint8_t *d;
  CHECK(uvw__delta_send(f->diff_only, f->bytes, f->len, 1, &d, &f->delta_len));
  CHECK(uvw__delta_send(f->sent, f->bytes, f->len, 1, &d, &f->delta_len));
  CHECK(uvw__delta_recv_full(f->received, f->bytes, f->len));
  CHECK(uvw__delta_send(f->sent, f->bytes, f->len, 1, &d, &f->delta_len));
  char id[UVW__DELTA_MAX_ID + 1];
  uint8_t *full;
  size_t flen;
  CHECK(d == NULL ? -1 : uvw__delta_recv(f->received, d, f->delta_len, &full, &flen, id));
  if (d != NULL && (flen != f->len || memcmp(full, f->bytes, flen) != 0)) {
    fprintf(stderr, "bench_wire: the rebuilt manifest differs from the sent one\n");
    failed = 1;
  }
  uvw_free(d);
  uvw_free(full);
  f->changing = uvw_context_copy(f->src);
  snprintf(name, sizeof name, "var%03d", 0);
  f->first = uvw_var_find(ns, name);
  f->alt[0] = uvw_value_cstring("a-typical-string-value");
  f->alt[1] = uvw_value_cstring("another-string-value!!");
  f->cache = uvw__mcache_new();
  uvw_manifest_t *m = NULL;
  CHECK(uvw__mcache_decode(f->cache, f->bytes, f->len, 64, &m, NULL));
  uvw_manifest_free(m);
}

static void teardown(fixture_t *f) {
  uvw_context_unref(f->changing);
  uvw_value_unref(f->alt[0]);
  uvw_value_unref(f->alt[1]);
  uvw__mcache_free(f->cache);
  uvw_manifest_free(f->decoded);
  uvw_free(f->bytes);
  uvw_free(f->changed);
  uvw__delta_book_free(f->sent);
  uvw__delta_book_free(f->received);
  uvw__delta_book_free(f->diff_only);
  uvw_context_unref(f->src);
  uvw_context_unref(f->merge);
}

int main(void) {
#ifdef UVWOOL_BENCH_BUILD_TYPE
  printf("bench_wire (%s build)\n", UVWOOL_BENCH_BUILD_TYPE);
#endif
  static const struct {
    const char *name;
    op_fn fn;
    int delta; /* its bytes column: the delta's */
  } ops[] = {{"encode", op_encode, 0},
             {"decode", op_decode, 0},
             {"encode+decode", op_roundtrip, 0},
             {"set+encode", op_set_encode, 0},
             {"set+encode+decode", op_set_roundtrip, 0},
             {"cached enc+dec", op_cached_roundtrip, 0},
             {"mount fresh", op_mount_fresh, 0},
             {"mount merged", op_mount_merged, 0},
             {"delta diff", op_delta_send, 1},
             {"delta diff+rebuild", op_delta_both, 1},
             {"delta 1 changed", op_delta_one_changed, 0},
             {"delta whole way", op_delta_roundtrip, 1}};
  const int sizes[] = {1, 8, 64};
  double whole_full = 0, whole_delta = 0, changing = 0, cached = 0;
  printf("%-6s %-19s %10s %10s %8s\n", "vars", "op", "min ns/op", "median", "bytes");
  for (size_t s = 0; s < 3; s++) {
    char ns[32];
    snprintf(ns, sizeof ns, "bench.wire.%d", sizes[s]);
    fixture_t f;
    setup(&f, sizes[s], ns);
    for (size_t o = 0; o < sizeof ops / sizeof *ops; o++) {
      double med, best = measure(ops[o].fn, &f, &med);
      printf("%-6d %-19s %10.1f %10.1f %8zu\n", sizes[s], ops[o].name, best, med, ops[o].delta ? f.delta_len : f.len);
      if (sizes[s] == 8 && ops[o].fn == op_roundtrip) whole_full = best;
      if (sizes[s] == 8 && ops[o].fn == op_delta_roundtrip) whole_delta = best;
      if (sizes[s] == 8 && ops[o].fn == op_set_roundtrip) changing = best;
      if (sizes[s] == 8 && ops[o].fn == op_cached_roundtrip) cached = best;
    }
    teardown(&f);
  }
  printf("\n  encode           = an unchanged context: a copy of the map's memo behind the chain id\n");
  printf("  set+encode       = a set in place (dropping the memo), then the whole manifest written\n");
  printf("  cached enc+dec   = encode of an unchanged context + the receiving connection's cached decode\n");
  printf("  delta whole way  = encode + diff + rebuild + decode of an unchanged manifest (one direction)\n");
  printf("  delta 1 changed  = diff + rebuild, the first variable changing back and forth\n");
  printf("8 variables, one direction, unchanged context: full %.0f ns -> with deltas %.0f ns "
         "(goal <= 1000 ns)  %s\n",
         whole_full, whole_delta, whole_delta <= 1000 ? "PASS" : "MISS");
  printf("8 variables, encode + decode, a context changing every time (set+encode+decode): %.0f ns "
         "(goal <= 1000 ns)  %s\n",
         changing, changing <= 1000 ? "PASS" : "MISS");
  printf("8 variables, encode + decode, unchanged, through a connection's cache: %.0f ns (goal <= 1000 ns)  %s\n",
         cached, cached <= 1000 ? "PASS" : "MISS");
  return failed;
}
