/* Row 6: random set/reset sequences over three variables, checked after every
 * step against a simple model of bound values and pending resets. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "testutil.h"

#define NVARS 3
#define STEPS 400
#define SEEDS 60
#define MAXTOK (STEPS + 1)

typedef struct {
  int bound[NVARS];
  int64_t value[NVARS];
  int pending[NVARS];
} model_t;

typedef struct {
  uvw_token_t *token;
  int var;
  int old_bound;
  int64_t old_value;
  int used;
} tok_t;

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void check(const model_t *m, uvw_var_t **vars, uvw_context_t *ctx, unsigned seed, int step) {
  for (int i = 0; i < NVARS; i++) {
    uvw_value_t *out = NULL;
    int rc = uvw_get(vars[i], &out);
    if (m->bound[i]) {
      cr_assert_eq(rc, 0, "seed %u step %d var %d: expected bound", seed, step, i);
      cr_assert_eq(uvw_value_as_int(out), m->value[i], "seed %u step %d var %d: value", seed, step, i);
    } else {
      cr_assert_eq(rc, UVW_ELOOKUP, "seed %u step %d var %d: expected unbound", seed, step, i);
    }
    int pending = uvw_context_has_pending_reset(ctx, uvw_var_namespace(vars[i]), uvw_var_name(vars[i]));
    cr_assert_eq(pending, m->pending[i], "seed %u step %d var %d: pending reset", seed, step, i);
    cr_assert_not(pending && uvw_context_lookup(ctx, vars[i]) != NULL,
                  "seed %u step %d var %d: bound and pending-reset overlap", seed, step, i);
  }
  size_t nbound = 0, npending = 0;
  for (int i = 0; i < NVARS; i++) {
    nbound += (size_t)m->bound[i];
    npending += (size_t)m->pending[i];
  }
  cr_assert_eq(uvw_context_size(ctx), nbound, "seed %u step %d: bound set size", seed, step);
  cr_assert_eq(uvw_context_pending_reset_count(ctx), npending, "seed %u step %d: pending set size", seed, step);
}

static void run_seed(unsigned seed) {
  uint64_t s = 0x9e3779b97f4a7c15ULL ^ seed;
  uvw_var_t *vars[NVARS];
  for (int i = 0; i < NVARS; i++) vars[i] = tu_var(i == 0 ? "a" : i == 1 ? "b" : "c", NULL);
  model_t m = {0};
  static tok_t toks[MAXTOK];
  int ntok = 0;
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  for (int step = 0; step < STEPS; step++) {
    uint64_t r = rng_next(&s);
    if (ntok == 0 || r % 3 != 0) { /* set */
      int i = (int)(rng_next(&s) % NVARS);
      int64_t val = (int64_t)(rng_next(&s) % 1000);
      uvw_value_t *v = uvw_value_int(val);
      tok_t *t = &toks[ntok++];
      t->var = i;
      t->old_bound = m.bound[i];
      t->old_value = m.value[i];
      t->used = 0;
      cr_assert_eq(uvw_set(vars[i], v, &t->token), 0);
      uvw_value_unref(v);
      m.bound[i] = 1;
      m.value[i] = val;
      m.pending[i] = 0;
    } else { /* reset a random token, possibly an already used one */
      tok_t *t = &toks[rng_next(&s) % (uint64_t)ntok];
      int rc = uvw_reset(vars[t->var], t->token);
      if (t->used) {
        cr_assert_eq(rc, UVW_ETOKEN_USED, "seed %u step %d", seed, step);
      } else {
        cr_assert_eq(rc, 0, "seed %u step %d", seed, step);
        t->used = 1;
        m.bound[t->var] = t->old_bound;
        m.value[t->var] = t->old_value;
        m.pending[t->var] = !t->old_bound;
      }
    }
    check(&m, vars, ctx, seed, step);
  }
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
  for (int i = 0; i < ntok; i++) uvw_token_free(toks[i].token);
}

Test(oracle, random_set_reset_sequences_match_the_model) {
  for (unsigned seed = 1; seed <= SEEDS; seed++) run_seed(seed);
}
