/* Micro-benchmark of the uvwool core hot paths, measured through the shared
 * library (what users link, PLT calls included).
 *
 *   bench_core [--cpython FILE]
 *
 * Measures ns/op of get (bound, unbound with a default, with 1/8/64/1000
 * variables bound), set, set+reset, copy, run, enter/exit and fork, and
 * prints one table row per operation with the ratio to its baseline:
 *   - get*: a plain thread-local read behind a non-inlined call with the
 *     same signature and the same loop shape as uvw_get (so both pay a call);
 *   - everything else: the same operation in CPython's contextvars, read
 *     from FILE ("op ns" lines, as cpython_contextvars.py prints them).
 * Without FILE the CPython columns say "skipped". run_bench.sh runs both.
 *
 * Method: each operation runs in a loop calibrated to ~TARGET_RUN_NS; every
 * case runs REPEATS times, round-robin with the others, and the minimum is
 * reported (the least disturbed run; the median is printed too, to show the
 * noise). Results go
 * to volatile sinks and API return codes are OR-ed and checked after each
 * loop, so nothing can be optimised away and a failing call aborts the run
 * (exit 1) instead of timing an error path. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "uvwool.h"

#ifndef UVWOOL_BENCH_BUILD_TYPE
#define UVWOOL_BENCH_BUILD_TYPE "unknown"
#endif

#define REPEATS 5
#define TARGET_RUN_NS 30e6 /* one timed run; x REPEATS x 20 cases keeps the C part ~4 s */
#define NVARS 1000

/* The fast path's goals (one per row, `goal` below): get within a ratio of
 * the thread-local read, set/set+reset/copy/run a speedup over CPython,
 * fork within copy + 10 ns, enter+exit within an absolute bound. */
#define FORK_OVER_COPY_NS 10.0

/* ---- timing ------------------------------------------------------------------ */

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Results are written here so the loops producing them stay live. */
static volatile uintptr_t sink;

typedef void (*bench_fn)(size_t iters);

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double time_loop(bench_fn fn, size_t iters) {
  double t0 = now_ns();
  fn(iters);
  return now_ns() - t0;
}

/* ---- failure handling ------------------------------------------------------------ */

static void die(const char *what, int rc) {
  const uvw_error_t *e = uvw_last_error();
  fprintf(stderr, "bench_core: %s failed: %s (%s)%s%s\n", what, uvw_err_name(rc), uvw_strerror(rc),
          e ? ": " : "", e ? uvw_error_message(e) : "");
  exit(1);
}

/* Loops OR the return codes together: one check per loop, not per call. */
static void check(int rc, const char *what) {
  if (rc != 0) die(what, rc);
}

static void *check_ptr(void *p, const char *what) {
  if (p == NULL) die(what, UVW_ENOMEM);
  return p;
}

/* ---- the baseline: a plain thread-local read ------------------------------------- */

static __thread void *tls_slot;

/* What "reading a thread-local" costs a library that exposes it through a
 * call: same signature and calling convention as uvw_get. noinline keeps
 * the call; the empty asm makes the loaded value opaque so the compiler can
 * neither hoist the read nor propagate a known return value into the caller
 * (GCC's IPA would otherwise do so through noinline). */
#if defined(__GNUC__) && !defined(__clang__)
#define BENCH_NOINLINE __attribute__((noinline, noipa))
#else
#define BENCH_NOINLINE __attribute__((noinline))
#endif
BENCH_NOINLINE static int tls_get(const void *key, void **out) {
  (void)key;
  void *p = tls_slot;
  __asm__ volatile("" : "+r"(p));
  *out = p;
  return 0;
}

/* ---- benchmark state ------------------------------------------------------------------ */

static struct {
  uvw_var_t *vars[NVARS];  /* bench.v0 .. bench.v999, no default */
  uvw_var_t *dflt;         /* bench.dflt, default 7, never bound */
  uvw_var_t *setvar;       /* bench.set: set/reset target, bound before the loops */
  uvw_var_t *unbound;      /* bench.unbound: set+reset from "no value" */
  uvw_value_t *val[2];     /* sets alternate between two values */
  uvw_context_t *ctx;      /* context for run / enter-exit */
  size_t nrot;             /* get_N rotates over vars[0 .. nrot) */
} B;

/* ---- the loops ------------------------------------------------------------------------- */

/* Baseline of get_bound/get_default: get_loop's shape, tls_get for uvw_get. */
static void loop_tls_call(size_t iters) {
  uintptr_t acc = 0;
  int rc = 0;
  void *v = NULL;
  uvw_var_t *var = B.vars[0];
  for (size_t i = 0; i < iters; i++) {
    rc |= tls_get(var, &v);
    acc += (uintptr_t)v;
  }
  sink = acc;
  check(rc, "tls_get");
}

/* For information only: the read with no call at all. The memory clobber
 * forces a reload each iteration (the compiler would hoist it otherwise). */
static void loop_tls_inline(size_t iters) {
  uintptr_t acc = 0;
  for (size_t i = 0; i < iters; i++) {
    __asm__ volatile("" ::: "memory");
    acc += (uintptr_t)tls_slot;
  }
  sink = acc;
}

/* One variable read again and again (vars[0], or the unbound B.dflt). */
static void get_loop(uvw_var_t *var, size_t iters) {
  uintptr_t acc = 0;
  int rc = 0;
  uvw_value_t *v = NULL;
  for (size_t i = 0; i < iters; i++) {
    rc |= uvw_get(var, &v);
    acc += (uintptr_t)v;
  }
  sink = acc;
  check(rc, "uvw_get");
}

static void loop_get_bound(size_t iters) { get_loop(B.vars[0], iters); }
static void loop_get_default(size_t iters) { get_loop(B.dflt, iters); }

/* get_N: a different variable each call, cycling over the N bound ones. */
static void loop_get_rot(size_t iters) {
  uvw_var_t *const *keys = B.vars;
  size_t n = B.nrot;
  uintptr_t acc = 0;
  int rc = 0;
  uvw_value_t *v = NULL;
  for (size_t i = 0, k = 0; i < iters; i++) {
    rc |= uvw_get(keys[k], &v);
    acc += (uintptr_t)v;
    if (++k == n) k = 0;
  }
  sink = acc;
  check(rc, "uvw_get");
}

/* The baseline of get_N: the same rotation, the same call shape. */
static void loop_tls_rot(size_t iters) {
  uvw_var_t *const *keys = B.vars;
  size_t n = B.nrot;
  uintptr_t acc = 0;
  int rc = 0;
  void *v = NULL;
  for (size_t i = 0, k = 0; i < iters; i++) {
    rc |= tls_get(keys[k], &v);
    acc += (uintptr_t)v;
    if (++k == n) k = 0;
  }
  sink = acc;
  check(rc, "tls_get");
}

/* Python's ContextVar.set always mints a token; this is the comparable set. */
static void loop_set(size_t iters) {
  int rc = 0;
  for (size_t i = 0; i < iters; i++) {
    uvw_token_t *tok = NULL;
    rc |= uvw_set(B.setvar, B.val[i & 1], &tok);
    uvw_token_free(tok);
  }
  check(rc, "uvw_set");
}

static void loop_set_notoken(size_t iters) {
  int rc = 0;
  for (size_t i = 0; i < iters; i++) rc |= uvw_set(B.setvar, B.val[i & 1], NULL);
  check(rc, "uvw_set");
}

static void set_reset_loop(uvw_var_t *var, size_t iters) {
  int rc = 0;
  for (size_t i = 0; i < iters; i++) {
    uvw_token_t *tok = NULL;
    rc |= uvw_set(var, B.val[i & 1], &tok);
    rc |= uvw_reset(var, tok);
    uvw_token_free(tok);
  }
  check(rc, "uvw_set/uvw_reset");
}

/* The usual `tok = set(); ...; reset(tok)` on a variable that had a value. */
static void loop_set_reset(size_t iters) { set_reset_loop(B.setvar, iters); }
/* The same from "no value": reset then records a pending reset in the chain. */
static void loop_set_reset_unbound(size_t iters) { set_reset_loop(B.unbound, iters); }

static void loop_copy(size_t iters) {
  uintptr_t acc = 0;
  for (size_t i = 0; i < iters; i++) {
    uvw_context_t *c = uvw_context_copy_current();
    acc |= (uintptr_t)c == 0; /* NULL (allocation failure) is caught below */
    uvw_context_unref(c);
  }
  if (acc) die("uvw_context_copy_current", UVW_ENOMEM);
}

static void empty_fn(void *arg) { (void)arg; }

static void loop_run(size_t iters) {
  int rc = 0;
  for (size_t i = 0; i < iters; i++) rc |= uvw_context_run(B.ctx, empty_fn, NULL);
  check(rc, "uvw_context_run");
}

static void loop_enter_exit(size_t iters) {
  int rc = 0;
  for (size_t i = 0; i < iters; i++) {
    rc |= uvw_context_enter(B.ctx);
    rc |= uvw_context_exit(B.ctx);
  }
  check(rc, "uvw_context_enter/exit");
}

/* Forking the current (armed) context: a new chain id is minted each time. */
static void loop_fork(size_t iters) {
  uvw_context_t *cur = uvw_context_current();
  uintptr_t acc = 0;
  for (size_t i = 0; i < iters; i++) {
    uvw_context_t *c = uvw_context_fork(cur, UVW_PROPAGATE_FORK);
    acc |= (uintptr_t)c == 0;
    uvw_context_unref(c);
  }
  if (acc) die("uvw_context_fork", UVW_ENOMEM);
}

/* ---- the cases and their schedule ----------------------------------------------------------- */

/* BASE_CASE: another row of this run (`base`), the goal a bound in ns over
 * it; BASE_NONE with a goal: an absolute bound in ns. */
enum baseline_kind { BASE_NONE, BASE_TLS, BASE_CPYTHON, BASE_CASE };

typedef struct {
  const char *op;         /* table row; also the name cpython_contextvars.py prints */
  const char *what;       /* what exactly is timed */
  bench_fn fn;
  uvw_context_t *ctx;     /* entered around every run (untimed); NULL: the base context */
  size_t nrot;            /* rotation length for the get_N loops */
  enum baseline_kind kind;
  size_t base;            /* BASE_TLS, BASE_CASE: index of the baseline case */
  const char *base_label; /* BASE_CPYTHON: the CPython statement compared with */
  const char *cpy_op;     /* BASE_CPYTHON: its name in the CPython output; NULL: op */
  double goal;            /* 0: none; else by kind: max ratio to TLS, min speedup
                           * over CPython, max ns over the base case, max ns */
  int hidden;             /* only a baseline of other rows */
  size_t iters;
  double ns[REPEATS];     /* ns/op of each run, sorted after the last round */
} bench_case_t;

#define MAX_CASES 32
static bench_case_t cases[MAX_CASES];
static size_t ncases;

static size_t add_case(bench_case_t c) {
  if (ncases == MAX_CASES) abort();
  cases[ncases] = c;
  return ncases++;
}

/* One timed run of a case, inside its context. */
static double run_case(bench_case_t *c, size_t iters) {
  if (c->ctx) check(uvw_context_enter(c->ctx), "uvw_context_enter");
  B.nrot = c->nrot;
  double ns = time_loop(c->fn, iters);
  if (c->ctx) check(uvw_context_exit(c->ctx), "uvw_context_exit");
  return ns;
}

/* Calibrate every case so one run lasts ~TARGET_RUN_NS (the doubling also
 * warms caches, branch predictors and malloc's free lists), then time the
 * cases round-robin, REPEATS rounds. Interleaving spreads each case's runs
 * over the whole benchmark, so a burst of load from another process (this
 * is meant to run on shared 2-core machines) spoils one run of several
 * cases rather than every run of one case; the minimum then discards it. */
static void run_all(void) {
  for (size_t i = 0; i < ncases; i++) {
    bench_case_t *c = &cases[i];
    size_t iters = 256;
    double elapsed;
    while ((elapsed = run_case(c, iters)) < TARGET_RUN_NS / 8) iters *= 2;
    c->iters = (size_t)((double)iters * TARGET_RUN_NS / elapsed) + 1;
  }
  for (int r = 0; r < REPEATS; r++) {
    fprintf(stderr, "  round %d/%d\n", r + 1, REPEATS);
    for (size_t i = 0; i < ncases; i++) cases[i].ns[r] = run_case(&cases[i], cases[i].iters) / (double)cases[i].iters;
  }
  for (size_t i = 0; i < ncases; i++) qsort(cases[i].ns, REPEATS, sizeof(double), cmp_double);
}

static double best(const bench_case_t *c) { return c->ns[0]; }
static double median(const bench_case_t *c) { return c->ns[REPEATS / 2]; }

/* ---- CPython results ------------------------------------------------------------------------- */

/* "op ns" lines; '#' lines are comments. */
#define MAX_CPY 32
static struct {
  char op[32];
  double ns;
} cpy[MAX_CPY];
static size_t ncpy;

static void load_cpython(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    perror(path);
    exit(1);
  }
  char line[256];
  while (fgets(line, sizeof(line), f) && ncpy < MAX_CPY) {
    if (line[0] == '#') continue;
    if (sscanf(line, "%31s %lf", cpy[ncpy].op, &cpy[ncpy].ns) == 2) ncpy++;
  }
  fclose(f);
}

static double cpython_ns(const char *op) {
  for (size_t i = 0; i < ncpy; i++)
    if (strcmp(cpy[i].op, op) == 0) return cpy[i].ns;
  return -1;
}

/* ---- the table ----------------------------------------------------------------------------------- */

static void print_row(const bench_case_t *c, int have_cpython) {
  char base_label[48] = "-", base_ns[16] = "-", ratio[64] = "-", target[32] = "-";
  const char *result = "";
  double base = -1;
  if (c->kind == BASE_TLS || c->kind == BASE_CASE) {
    const bench_case_t *b = &cases[c->base];
    base = best(b);
    snprintf(base_label, sizeof(base_label), "%s", b->op);
  } else if (c->kind == BASE_CPYTHON) {
    base = cpython_ns(c->cpy_op ? c->cpy_op : c->op);
    snprintf(base_label, sizeof(base_label), "%s", c->base_label ? c->base_label : "-");
  }
  if (base > 0) snprintf(base_ns, sizeof(base_ns), "%.2f", base);

  if (c->kind == BASE_TLS) {
    double x = best(c) / base;
    snprintf(ratio, sizeof(ratio), "get is %.2fx the thread-local read", x);
    if (c->goal > 0) {
      snprintf(target, sizeof(target), "<= %.0fx TLS read", c->goal);
      result = x <= c->goal ? "PASS" : "MISS";
    }
  } else if (c->kind == BASE_CASE) {
    double over = best(c) - base;
    snprintf(ratio, sizeof(ratio), "%+.2f ns over %s", over, base_label);
    snprintf(target, sizeof(target), "<= %s + %.0f ns", base_label, c->goal);
    result = over <= c->goal ? "PASS" : "MISS";
  } else if (c->kind == BASE_NONE && c->goal > 0) {
    snprintf(target, sizeof(target), "<= %.0f ns", c->goal);
    result = best(c) <= c->goal ? "PASS" : "MISS";
  } else if (c->kind == BASE_CPYTHON) {
    if (c->goal > 0) snprintf(target, sizeof(target), ">= %.0fx CPython", c->goal);
    if (base > 0) {
      double x = base / best(c);
      if (x >= 1)
        snprintf(ratio, sizeof(ratio), "uvwool is %.1fx faster than CPython", x);
      else
        snprintf(ratio, sizeof(ratio), "uvwool is %.1fx SLOWER than CPython", 1 / x);
      if (c->goal > 0) result = x >= c->goal ? "PASS" : "MISS";
    } else {
      snprintf(ratio, sizeof(ratio), "%s",
               !have_cpython ? "(CPython skipped)" : c->base_label ? "(missing from CPython output)"
                                                                   : "(no CPython equivalent)");
    }
  }
  printf("%-18s | %9.2f %7.2f | %-24s %8s | %-38s | %-16s | %s\n", c->op, best(c), median(c), base_label, base_ns,
         ratio, target, result);
}

static void print_table(int have_cpython) {
  printf("\n%-18s | %9s %7s | %-24s %8s | %-38s | %-16s | %s\n", "op", "uvwool ns", "median", "baseline", "base ns",
         "ratio (on the min)", "target", "result");
  for (int i = 0; i < 141; i++) putchar('-');
  putchar('\n');
  for (size_t i = 0; i < ncases; i++)
    if (!cases[i].hidden) print_row(&cases[i], have_cpython);
  printf("\n");
  for (size_t i = 0; i < ncases; i++)
    if (!cases[i].hidden) printf("  %-18s %s\n", cases[i].op, cases[i].what);
  if (have_cpython) {
    /* CPython's get is not a target (get is held to the TLS read), but it
     * is the same operation, so show it. */
    printf("\nCPython get, for reference (ns):");
    for (size_t i = 0; i < ncases; i++) {
      double ns = cases[i].kind == BASE_TLS ? cpython_ns(cases[i].op) : -1;
      if (ns >= 0) printf(" %s %.1f", cases[i].op, ns);
    }
    printf("\n");
  } else {
    printf("\nCPython columns skipped (no --cpython results; run_bench.sh provides them).\n");
  }
}

/* ---- setup ------------------------------------------------------------------------------------------ */

static void declare(const char *name, uvw_value_t *dflt, uvw_var_t **out) {
  check(uvw_var_declare("bench", name, dflt, out), "uvw_var_declare");
}

static uvw_context_t *owned[8]; /* contexts made for cases, dropped at the end */
static size_t nowned;

/* A new context with vars[0 .. n) bound (hence armed, owned by this thread).
 * Returned not entered: run_case enters it around each run. */
static uvw_context_t *context_with_bound(size_t n) {
  if (nowned == sizeof(owned) / sizeof(owned[0])) abort();
  uvw_context_t *c = owned[nowned++] = check_ptr(uvw_context_new(), "uvw_context_new");
  check(uvw_context_enter(c), "uvw_context_enter");
  for (size_t i = 0; i < n; i++) check(uvw_set(B.vars[i], B.val[0], NULL), "uvw_set");
  check(uvw_context_exit(c), "uvw_context_exit");
  if (uvw_context_size(c) != n) {
    fprintf(stderr, "bench_core: context holds %zu bindings, expected %zu\n", uvw_context_size(c), n);
    exit(1);
  }
  return c;
}

static void add_cases(void) {
  /* Baselines. */
  size_t tls = add_case((bench_case_t){.op = "tls_read",
                                       .what = "baseline: non-inlined call returning a static __thread pointer",
                                       .fn = loop_tls_call});
  add_case((bench_case_t){.op = "tls_read_inline", .what = "info: the same read inlined in the loop, no call",
                          .fn = loop_tls_inline});

  /* get, in the main thread's base context with one binding (vars[0]). */
  add_case((bench_case_t){.op = "get_bound", .what = "uvw_get of a bound variable (thread's base context, 1 bound)",
                          .fn = loop_get_bound, .kind = BASE_TLS, .base = tls, .goal = 3});
  add_case((bench_case_t){.op = "get_default",
                          .what = "uvw_get of an unbound variable with a default (same context)",
                          .fn = loop_get_default, .kind = BASE_TLS, .base = tls, .goal = 3});

  /* get_N: each in its own context holding exactly N bindings; the
   * baseline rotates the same way so both loops pay the same rotation. */
  static const size_t sizes[] = {1, 8, 64, 1000};
  static const char *const names[] = {"get_1", "get_8", "get_64", "get_1000"};
  static const double goals[] = {3, 3, 3, 5}; /* a large map may cost a little more */
  static const char *const base_names[] = {"tls_read (rotating/1)", "tls_read (rotating/8)",
                                           "tls_read (rotating/64)", "tls_read (rotating/1000)"};
  for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
    uvw_context_t *ctx = context_with_bound(sizes[s]);
    size_t base = add_case((bench_case_t){.op = base_names[s], .fn = loop_tls_rot, .ctx = ctx,
                                          .nrot = sizes[s], .hidden = 1});
    add_case((bench_case_t){.op = names[s],
                            .what = "uvw_get rotating over N bound variables in a context holding exactly N",
                            .fn = loop_get_rot, .ctx = ctx, .nrot = sizes[s], .kind = BASE_TLS, .base = base,
                            .goal = goals[s]});
  }

  /* Mutations and context operations, in the base context (setvar bound). */
  add_case((bench_case_t){.op = "set", .what = "uvw_set with a token + uvw_token_free (Python's set mints a token)",
                          .fn = loop_set, .kind = BASE_CPYTHON, .base_label = "CPython var.set(x)",
                          .goal = 4});
  add_case((bench_case_t){.op = "set_notoken", .what = "uvw_set without a token (vs CPython's set)",
                          .fn = loop_set_notoken, .kind = BASE_CPYTHON, .base_label = "CPython var.set(x)",
                          .cpy_op = "set"});
  add_case((bench_case_t){.op = "set_reset", .what = "uvw_set + uvw_reset + uvw_token_free, variable bound before",
                          .fn = loop_set_reset, .kind = BASE_CPYTHON, .base_label = "CPython set+reset",
                          .goal = 4});
  /* In a context of its own: the pending reset it leaves in the chain must
   * not slow the other cases' sets. */
  add_case((bench_case_t){.op = "set_reset_unbound",
                          .what = "the same, variable unbound before (reset leaves a pending reset)",
                          .fn = loop_set_reset_unbound, .ctx = context_with_bound(1), .kind = BASE_CPYTHON,
                          .base_label = "CPython set+reset"});
  size_t copy = add_case((bench_case_t){.op = "copy",
                                        .what = "uvw_context_copy_current + uvw_context_unref (armed context)",
                                        .fn = loop_copy, .kind = BASE_CPYTHON,
                                        .base_label = "CPython copy_context()", .goal = 3});
  add_case((bench_case_t){.op = "run", .what = "uvw_context_run with an empty function", .fn = loop_run,
                          .kind = BASE_CPYTHON, .base_label = "CPython ctx.run(f)", .goal = 5});
  add_case((bench_case_t){.op = "enter_exit", .what = "uvw_context_enter + uvw_context_exit",
                          .fn = loop_enter_exit, .goal = 3});
  add_case((bench_case_t){.op = "fork", .what = "uvw_context_fork(armed, UVW_PROPAGATE_FORK) + unref",
                          .fn = loop_fork, .kind = BASE_CASE, .base = copy, .goal = FORK_OVER_COPY_NS});
}

int main(int argc, char **argv) {
  const char *cpython_file = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--cpython") == 0 && i + 1 < argc) {
      cpython_file = argv[++i];
    } else {
      fprintf(stderr, "usage: %s [--cpython FILE]\n", argv[0]);
      return 2;
    }
  }
  if (cpython_file) load_cpython(cpython_file);

  static int tls_target;
  tls_slot = &tls_target;
  B.val[0] = check_ptr(uvw_value_int(1), "uvw_value_int");
  B.val[1] = check_ptr(uvw_value_int(2), "uvw_value_int");
  uvw_value_t *seven = check_ptr(uvw_value_int(7), "uvw_value_int");
  for (size_t i = 0; i < NVARS; i++) {
    char name[16];
    snprintf(name, sizeof(name), "v%zu", i);
    declare(name, NULL, &B.vars[i]);
  }
  declare("dflt", seven, &B.dflt);
  declare("set", NULL, &B.setvar);
  declare("unbound", NULL, &B.unbound);

  /* The main thread's base context, armed: the usual state of a thread that
   * has used uvwool. vars[0] is what get_bound reads; setvar has a value
   * before every set loop. */
  check(uvw_set(B.vars[0], B.val[0], NULL), "uvw_set");
  check(uvw_set(B.setvar, B.val[0], NULL), "uvw_set");
  B.ctx = check_ptr(uvw_context_copy_current(), "uvw_context_copy_current"); /* for run and enter/exit */
  add_cases();

  printf("uvwool %s core benchmark: shared library, build type %s%s\n"
         "ns/op = min (and median) of %d runs of ~%.0f ms each, the cases interleaved round-robin\n",
         uvw_version_string(), UVWOOL_BENCH_BUILD_TYPE,
#ifdef __OPTIMIZE__
         "",
#else
         " (bench itself built WITHOUT optimisation: numbers are meaningless)",
#endif
         REPEATS, TARGET_RUN_NS / 1e6);
  fflush(stdout); /* the header before the progress lines when both go to a terminal */
  fprintf(stderr, "measuring %zu cases (progress on stderr):\n", ncases);
  run_all();
  print_table(cpython_file != NULL);

  for (size_t i = 0; i < nowned; i++) uvw_context_unref(owned[i]);
  uvw_context_unref(B.ctx);
  uvw_value_unref(B.val[0]);
  uvw_value_unref(B.val[1]);
  uvw_value_unref(seven);
  return 0;
}
