/* Reading a context from another thread while the thread that entered it
 * writes (contextvars allows ctx.copy(), ctx.get() and len(ctx) from any
 * thread). Meant for ThreadSanitizer: a plain main(), "N passed, N failed".
 *
 * The writer sets NVARS variables to the round number r, in order, every
 * round, and every third round also sets and resets a scratch variable. So
 * any state a completed write leaves has the shape r, ..., r, r-1, ..., r-1
 * (the first k variables at r, the rest one behind), a snapshot that is not
 * of that shape mixes two moments. Rounds only grow, so successive
 * snapshots taken by one reader never go back. Two phases: NVARS below the
 * flat map's size (updated in place) and above it (a HAMT). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "uvwool.h"

#define MAX_VARS 40
#define ROUNDS 2000       /* at least this many rounds... */
#define MIN_READS 2000    /* ...and until the readers made this many passes */
#define MAX_ROUNDS 5000000

static uvw_var_t *vars[MAX_VARS], *scratch;
static int nvars;
static uvw_context_t *shared;   /* entered by the writer */
static atomic_int writer_ready, writer_done;
static atomic_long reads;
static int64_t last_round;

typedef struct {
  int64_t last_first;  /* the greatest first-variable round seen so far */
  long snapshots, bad_shape, went_back, bad_size, bad_lookup, bad_armed, bad_encode, bad_memo;
} reader_t;

static int64_t int_of(uvw_value_t *v) { return v ? uvw_value_as_int(v) : 0; }

static void *writer(void *arg) {
  (void)arg;
  uvw_context_t *mine = uvw_context_ref(shared); /* held while entered */
  if (uvw_context_enter(mine) != 0) return NULL;
  atomic_store(&writer_ready, 1);
  int64_t r;
  for (r = 1; r <= ROUNDS || (atomic_load(&reads) < MIN_READS && r < MAX_ROUNDS); r++) {
    /* Past ROUNDS the writer only waits for the readers' passes: it lets
     * them run. Under valgrind, which runs one thread at a time, a writer
     * that never yields starved them to MAX_ROUNDS (past the CI's 600 s). */
    if (r > ROUNDS) sched_yield();
    for (int k = 0; k < nvars; k++) {
      uvw_value_t *v = uvw_value_int(r);
      uvw_set(vars[k], v, NULL);
      uvw_value_unref(v); /* the context holds the only reference: freed when replaced */
    }
    if (r % 3 == 0) {
      uvw_token_t *tok;
      uvw_value_t *v = uvw_value_int(-r);
      if (uvw_set(scratch, v, &tok) == 0) {
        uvw_reset(scratch, tok);
        uvw_token_free(tok);
      }
      uvw_value_unref(v);
    }
  }
  last_round = r - 1;
  uvw_context_exit(mine);
  uvw_context_unref(mine);
  atomic_store(&writer_done, 1);
  return NULL;
}

/* The values of a private copy must be one moment of the writer. */
static void check_snapshot(reader_t *rd, uvw_context_t *copy) {
  int64_t first = int_of(uvw_context_lookup(copy, vars[0]));
  int drop = 0, bad = 0;
  for (int k = 0; k < nvars; k++) {
    int64_t v = int_of(uvw_context_lookup(copy, vars[k]));
    if (v == first - 1 && first > 0) drop = 1;
    else if (v != first || drop) bad = 1;
  }
  uvw_value_t *s = uvw_context_lookup(copy, scratch);
  if (s != NULL && int_of(s) >= 0) bad = 1; /* only ever bound to -r */
  size_t bound = s != NULL;
  for (int k = 0; k < nvars; k++) bound += uvw_context_lookup(copy, vars[k]) != NULL;
  if (uvw_context_size(copy) != bound) rd->bad_size++;
  rd->bad_shape += bad;
  if (first < rd->last_first) rd->went_back++;
  rd->last_first = first;
  rd->snapshots++;
}

/* A snapshot's map is shared with the live context and the other readers'
 * snapshots, so readers race to give it its encoding memo (map.h) while the
 * writer replaces it: each encoding must be of this snapshot, the second
 * (from the memo) the same bytes as the first. */
static void check_encoding(reader_t *rd, uvw_context_t *copy) {
  void *a = NULL, *b = NULL;
  size_t alen, blen;
  uvw_manifest_t *m = NULL;
  if (uvw_manifest_encode(copy, &a, &alen) != 0 || uvw_manifest_encode(copy, &b, &blen) != 0 || alen != blen ||
      memcmp(a, b, alen) != 0 || uvw_manifest_decode(a, alen, &m) != 0) {
    rd->bad_memo++;
  } else {
    for (size_t i = 0; i < uvw_manifest_entry_count(m); i++)
      if (!uvw_value_equal(uvw_manifest_entry_value(m, i), uvw_context_lookup(copy, uvw_manifest_entry_var(m, i))))
        rd->bad_memo++;
  }
  uvw_manifest_free(m);
  uvw_free(a);
  uvw_free(b);
}

static void *reader(void *arg) {
  reader_t *rd = arg;
  while (!atomic_load(&writer_ready)) sched_yield();
  int64_t last_lookup = 0;
  size_t last_size = 0;
  do {
    uvw_context_t *copy = uvw_context_copy(shared);
    if (copy == NULL) continue;
    check_snapshot(rd, copy);
    check_encoding(rd, copy);
    uvw_context_unref(copy);

    uvw_context_t *fork = uvw_context_fork(shared, UVW_PROPAGATE_THREAD);
    if (fork != NULL) {
      check_snapshot(rd, fork);
      uvw_context_unref(fork);
    }

    /* Direct reads of the live context: each its own moment. */
    int64_t v = int_of(uvw_context_lookup(shared, vars[nvars - 1]));
    if (v < last_lookup) rd->bad_lookup++;
    last_lookup = v;
    size_t n = uvw_context_size(shared);
    if (n < last_size && n + 1 < last_size) rd->bad_size++; /* only the scratch comes and goes */
    if (n > (size_t)nvars + 1) rd->bad_size++;
    last_size = n;
    char id[33];
    if (v > 0 && (!uvw_context_is_armed(shared) || uvw_context_chain_id(shared, id) != 0)) rd->bad_armed++;
    /* The wire reads an explicitly given context the same way. */
    void *wire;
    size_t wire_len;
    if (uvw_manifest_encode(shared, &wire, &wire_len) != 0) rd->bad_encode++;
    else uvw_free(wire);
    atomic_fetch_add(&reads, 1);
  } while (!atomic_load(&writer_done));
  return NULL;
}

static void run_phase(int n, const char *label) {
  nvars = n;
  shared = uvw_context_new();
  atomic_store(&writer_ready, 0);
  atomic_store(&writer_done, 0);
  atomic_store(&reads, 0);
  reader_t rd[2] = {{0}, {0}};
  pthread_t w, r[2];
  pthread_create(&r[0], NULL, reader, &rd[0]);
  pthread_create(&r[1], NULL, reader, &rd[1]);
  pthread_create(&w, NULL, writer, NULL);
  pthread_join(w, NULL);
  pthread_join(r[0], NULL);
  pthread_join(r[1], NULL);

  /* After the writer: the final state, read from here. */
  uvw_context_t *copy = uvw_context_copy(shared);
  CHECK(last_round >= ROUNDS && int_of(uvw_context_lookup(copy, vars[0])) == last_round &&
            int_of(uvw_context_lookup(copy, vars[n - 1])) == last_round,
        "%s: the final copy holds the last round %lld", label, (long long)last_round);
  CHECK(uvw_context_size(copy) == (size_t)n, "%s: final size %zu, want %d", label, uvw_context_size(copy), n);
  uvw_context_unref(copy);
  for (int i = 0; i < 2; i++) {
    CHECK(rd[i].snapshots > 0, "%s: reader %d took snapshots", label, i);
    CHECK(rd[i].bad_shape == 0, "%s: reader %d: %ld of %ld snapshots mix two moments", label, i, rd[i].bad_shape,
          rd[i].snapshots);
    CHECK(rd[i].went_back == 0, "%s: reader %d: %ld snapshots went back in time", label, i, rd[i].went_back);
    CHECK(rd[i].bad_size == 0, "%s: reader %d: %ld sizes disagree with the bindings", label, i, rd[i].bad_size);
    CHECK(rd[i].bad_lookup == 0, "%s: reader %d: %ld direct lookups went back", label, i, rd[i].bad_lookup);
    CHECK(rd[i].bad_encode == 0, "%s: reader %d: %ld manifest encodes failed", label, i, rd[i].bad_encode);
    CHECK(rd[i].bad_memo == 0, "%s: reader %d: %ld encodings not of their snapshot or not repeatable", label, i,
          rd[i].bad_memo);
    CHECK(rd[i].bad_armed == 0, "%s: reader %d: %ld armed checks failed", label, i, rd[i].bad_armed);
  }
  printf("%s: %lld rounds, %ld + %ld snapshots\n", label, (long long)last_round, rd[0].snapshots, rd[1].snapshots);
  uvw_context_unref(shared);
}

int main(void) {
  for (int k = 0; k < MAX_VARS; k++) {
    char name[16];
    snprintf(name, sizeof name, "v%d", k);
    if (uvw_var_declare("test.foreign_reads", name, NULL, &vars[k]) != 0) return 2;
  }
  if (uvw_var_declare("test.foreign_reads", "scratch", NULL, &scratch) != 0) return 2;
  run_phase(6, "flat map");
  run_phase(MAX_VARS, "hamt");
  return CHECK_SUMMARY();
}
