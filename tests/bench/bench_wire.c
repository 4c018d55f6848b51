/* Micro-benchmark of the wire layer, through the shared library.
 *
 * For manifests of 1, 8 and 64 variables (alternately string and int
 * values): encode, decode, encode+decode (the target: 8 variables
 * in about a microsecond), the encoded size, and mount of a decoded
 * manifest into a fresh (unarmed) context vs merged onto an armed one.
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
    if ((x) != 0) {                                                                           \
      fprintf(stderr, "bench_wire: %s failed: %s\n", #x, uvw_error_message(uvw_last_error())); \
      failed = 1;                                                                             \
    }                                                                                         \
  } while (0)

typedef struct {
  uvw_context_t *src;     /* the armed context to encode */
  void *bytes;            /* its manifest */
  size_t len;
  uvw_manifest_t *decoded;
  uvw_context_t *merge;   /* an armed receiver with other variables */
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
}

static void teardown(fixture_t *f) {
  uvw_manifest_free(f->decoded);
  uvw_free(f->bytes);
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
  } ops[] = {{"encode", op_encode},
             {"decode", op_decode},
             {"encode+decode", op_roundtrip},
             {"mount fresh", op_mount_fresh},
             {"mount merged", op_mount_merged}};
  const int sizes[] = {1, 8, 64};
  printf("%-6s %-15s %10s %10s %8s\n", "vars", "op", "min ns/op", "median", "bytes");
  for (size_t s = 0; s < 3; s++) {
    char ns[32];
    snprintf(ns, sizeof ns, "bench.wire.%d", sizes[s]);
    fixture_t f;
    setup(&f, sizes[s], ns);
    for (size_t o = 0; o < sizeof ops / sizeof *ops; o++) {
      double med, best = measure(ops[o].fn, &f, &med);
      printf("%-6d %-15s %10.1f %10.1f %8zu\n", sizes[s], ops[o].name, best, med, f.len);
    }
    teardown(&f);
  }
  return failed;
}
