/* docs/testing.md row 27: mount, fresh and merged, and its failure modes. */
#include <math.h>
#include <pthread.h>

#include "chain.h"
#include "context.h"
#include "task.h"
#include "wiretest.h"

#define ID "00000000000000000000000000c0ffee"

static uvw_manifest_t *manifest(wt_manifest_t *w) {
  size_t len;
  uint8_t *b = wt_pack_manifest(w, &len);
  uvw_manifest_t *m = NULL;
  int rc = uvw_manifest_decode(b, len, &m);
  free(b);
  cr_assert_eq(rc, 0, "decode: %s", uvw_error_message(uvw_last_error()));
  return m;
}

Test(mount, fresh_install_arms_with_the_manifest_id) {
  uvw_var_t *a = tu_var("a", NULL);
  wt_manifest_t w;
  wt_init(&w, ID);
  wt_int(wt_entry(&w, uvw_var_namespace(a), "a", 1), 5);
  uvw_manifest_t *m = manifest(&w);
  uvw_context_t *ctx = wt_enter_new();
  cr_assert(!uvw_context_is_armed(ctx));
  cr_assert_eq(uvw_manifest_mount(m), 0);
  cr_assert(uvw_context_is_armed(ctx));
  char id[33];
  cr_assert_eq(uvw_context_chain_id(ctx, id), 0);
  cr_assert_str_eq(id, ID, "an unarmed receiver adopts the sender's id");
  cr_assert_eq(uvw_context_owner_thread(ctx), uvw_thread_generation());
  uvw_value_t *got;
  cr_assert_eq(uvw_get(a, &got), 0);
  cr_assert_eq(uvw_value_as_int(got), 5);
  wt_leave(ctx);
  uvw_manifest_free(m);
}

Test(mount, empty_id_mints_a_fresh_one) {
  uvw_var_t *a = tu_var("a", NULL);
  wt_manifest_t w;
  wt_init(&w, NULL);
  wt_int(wt_entry(&w, uvw_var_namespace(a), "a", 1), 5);
  uvw_manifest_t *m = manifest(&w);
  char ids[2][33];
  for (int i = 0; i < 2; i++) {
    uvw_context_t *ctx = wt_enter_new();
    cr_assert_eq(uvw_manifest_mount(m), 0);
    cr_assert_eq(uvw_context_chain_id(ctx, ids[i]), 0);
    cr_assert_str_neq(ids[i], "00000000000000000000000000000000");
    wt_leave(ctx);
  }
  cr_assert_str_neq(ids[0], ids[1], "each mount mints its own");
  uvw_manifest_free(m);
}

Test(mount, id_only_manifest_does_not_arm) {
  wt_manifest_t w;
  wt_init(&w, ID);
  uvw_manifest_t *m = manifest(&w);
  uvw_context_t *ctx = wt_enter_new();
  cr_assert_eq(uvw_manifest_mount(m), 0);
  cr_assert(!uvw_context_is_armed(ctx));
  cr_assert_eq(uvw_context_size(ctx), 0);
  /* On an armed receiver it keeps the receiver's id and bindings. */
  uvw_var_t *a = tu_var("a", NULL);
  wt_set(a, uvw_value_int(1));
  char before[33], after[33];
  uvw_context_chain_id(ctx, before);
  cr_assert_eq(uvw_manifest_mount(m), 0);
  uvw_context_chain_id(ctx, after);
  cr_assert_str_eq(before, after);
  cr_assert_eq(uvw_value_as_int(uvw_context_lookup(ctx, a)), 1);
  wt_leave(ctx);
  uvw_manifest_free(m);
}

Test(mount, merge_rules) {
  const char *ns = tu_namespace();
  uvw_var_t *over, *gone, *kept, *added, *pending;
  cr_assert_eq(uvw_var_declare(ns, "over", NULL, &over), 0);
  cr_assert_eq(uvw_var_declare(ns, "gone", NULL, &gone), 0);
  cr_assert_eq(uvw_var_declare(ns, "kept", NULL, &kept), 0);
  cr_assert_eq(uvw_var_declare(ns, "added", NULL, &added), 0);
  cr_assert_eq(uvw_var_declare(ns, "pending", NULL, &pending), 0);
  uvw_context_t *ctx = wt_enter_new();
  /* The receiver's chain is owned by task t1, which then finishes. */
  uvw__task_t *t1 = uvw__task_new(), *t2 = uvw__task_new();
  uvw__task_t *prev = uvw__task_swap_current(t1);
  wt_set(over, uvw_value_int(1));
  wt_set(gone, uvw_value_int(2));
  wt_set(kept, uvw_value_int(3));
  wt_set_reset(pending);
  uvw__task_finish(t1);
  uvw__task_swap_current(t2);
  char rid[33];
  uvw_context_chain_id(ctx, rid);
  const void *chain_before = uvw_context_chain(ctx);

  wt_manifest_t w;
  wt_init(&w, ID);
  wt_int(wt_entry(&w, ns, "added", 1), 40);
  wt_entry(&w, ns, "gone", 0);
  wt_int(wt_entry(&w, ns, "over", 1), 10);
  wt_int(wt_entry(&w, ns, "pending", 1), 50);
  uvw_manifest_t *m = manifest(&w);
  cr_assert_eq(uvw_manifest_mount(m), 0);

  char id[33];
  uvw_context_chain_id(ctx, id);
  cr_assert_str_eq(id, rid, "the receiver keeps its id");
  cr_assert_neq(uvw_context_chain(ctx), chain_before, "a new chain record was installed");
  cr_assert_eq(uvw_value_as_int(uvw_context_lookup(ctx, over)), 10, "incoming wins on overlap");
  cr_assert_null(uvw_context_lookup(ctx, gone), "incoming reset unbinds");
  cr_assert(uvw_context_has_pending_reset(ctx, ns, "gone"), "and becomes a pending reset");
  cr_assert_eq(uvw_value_as_int(uvw_context_lookup(ctx, kept)), 3, "unmentioned stays bound");
  cr_assert_eq(uvw_value_as_int(uvw_context_lookup(ctx, added)), 40);
  cr_assert_eq(uvw_value_as_int(uvw_context_lookup(ctx, pending)), 50);
  cr_assert(!uvw_context_has_pending_reset(ctx, ns, "pending"), "bound and pending never overlap");
  const uvw__chain_t *c = uvw_context_chain(ctx);
  cr_assert_eq(c->owner_task, t2, "owner re-stamped to the mounting task");
  cr_assert_eq(c->owner_gen, uvw_thread_generation());
  uvw__task_swap_current(prev);
  uvw__task_finish(t2);
  uvw__task_unref(t1);
  uvw__task_unref(t2);
  wt_leave(ctx);
  uvw_manifest_free(m);
}

static void wt_double(Uvwool__Value *v, double d) {
  v->kind_case = UVWOOL__VALUE__KIND_DOUBLE_VALUE;
  v->double_value = d;
}

/* The merge of an answer whose routine changed nothing: the context keeps
 * its map and chain record (and so the map's encoding), exactly as if each
 * entry had been set again; a value that differs only in its bits still
 * changes it. */
Test(mount, a_mount_that_changes_nothing_keeps_map_and_chain) {
  const char *ns = tu_namespace();
  uvw_var_t *i, *s, *d, *r;
  cr_assert_eq(uvw_var_declare(ns, "i", NULL, &i), 0);
  cr_assert_eq(uvw_var_declare(ns, "s", NULL, &s), 0);
  cr_assert_eq(uvw_var_declare(ns, "d", NULL, &d), 0);
  cr_assert_eq(uvw_var_declare(ns, "r", NULL, &r), 0);
  uvw_context_t *ctx = wt_enter_new();
  wt_set(i, uvw_value_int(1));
  wt_set(s, uvw_value_cstring("x"));
  wt_set(d, uvw_value_double(0.0));
  wt_set_reset(r);
  const void *map = ctx->map, *chain = uvw_context_chain(ctx);

  wt_manifest_t w;
  wt_init(&w, ID);
  wt_double(wt_entry(&w, ns, "d", 1), 0.0);
  wt_int(wt_entry(&w, ns, "i", 1), 1);
  wt_entry(&w, ns, "r", 0);
  wt_string(wt_entry(&w, ns, "s", 1), "x");
  uvw_manifest_t *same = manifest(&w);
  cr_assert_eq(uvw_manifest_mount(same), 0);
  cr_assert_eq(ctx->map, map, "nothing changed: the map stays");
  cr_assert_eq(uvw_context_chain(ctx), chain, "and so does the chain record");
  cr_assert_str_eq(uvw_value_as_string(uvw_context_lookup(ctx, s)), "x");

  wt_init(&w, ID);
  wt_double(wt_entry(&w, ns, "d", 1), -0.0);
  uvw_manifest_t *sign = manifest(&w);
  cr_assert_eq(uvw_manifest_mount(sign), 0);
  cr_assert_neq(ctx->map, map, "-0.0 is not 0.0 on the wire: mounted");
  cr_assert(signbit(uvw_value_as_double(uvw_context_lookup(ctx, d))));
  cr_assert(uvw_context_has_pending_reset(ctx, ns, "r"));
  wt_leave(ctx);
  uvw_manifest_free(same);
  uvw_manifest_free(sign);
}

Test(mount, stubs_bound_by_a_mount_are_pinned) {
  const char *ns = tu_namespace();
  wt_manifest_t w;
  wt_init(&w, ID);
  wt_string(wt_entry(&w, ns, "stub", 1), "s");
  uvw_manifest_t *m = manifest(&w);
  uvw_var_t *stub = uvw_var_find(ns, "stub");
  cr_assert(uvw_var_is_stub(stub));
  uvw_context_t *ctx = wt_enter_new();
  cr_assert_eq(uvw_manifest_mount(m), 0);
  cr_assert(uvw__chain_has_stub(uvw_context_chain(ctx), stub));
  /* A fork keeps the stub and its value. */
  uvw_context_t *fork = uvw_context_fork(ctx, UVW_PROPAGATE_FORK);
  cr_assert(uvw__chain_has_stub(uvw_context_chain(fork), stub));
  cr_assert_str_eq(uvw_value_as_string(uvw_context_lookup(fork, stub)), "s");
  uvw_context_unref(fork);
  wt_leave(ctx);
  uvw_manifest_free(m);
}

typedef struct {
  uvw_context_t *ctx;
  uvw_manifest_t *m;
  int rc;
  const void *chain_after;
  size_t size_after;
} foreign_t;

static void *mount_foreign(void *arg) {
  foreign_t *f = arg;
  uvw_context_enter(f->ctx);
  f->rc = uvw_manifest_mount(f->m);
  f->chain_after = uvw_context_chain(f->ctx);
  f->size_after = uvw_context_size(f->ctx);
  uvw_context_exit(f->ctx);
  return NULL;
}

Test(mount, runs_the_guard_first) {
  uvw_var_t *a = tu_var("a", NULL);
  uvw_context_t *ctx = wt_enter_new();
  wt_set(a, uvw_value_int(1));
  cr_assert_eq(uvw_context_exit(ctx), 0);
  wt_manifest_t w;
  wt_init(&w, ID);
  wt_int(wt_entry(&w, uvw_var_namespace(a), "b", 1), 2);
  foreign_t f = {ctx, manifest(&w), 0, NULL, 0};
  const void *chain = uvw_context_chain(ctx);
  pthread_t th;
  pthread_create(&th, NULL, mount_foreign, &f);
  pthread_join(th, NULL);
  cr_assert_eq(f.rc, UVW_ECONTENTION);
  cr_assert_eq(f.chain_after, chain, "context untouched");
  cr_assert_eq(f.size_after, 1);
  uvw_manifest_free(f.m);
  uvw_context_unref(ctx);
}

/* Every allocation of a mount fails in turn: each failure is UVW_ENOMEM and
 * leaves the context exactly as it was; the sweep ends in a success. */
static void mount_under_failures(int armed) {
  const char *ns = tu_namespace();
  uvw_var_t *a, *b;
  cr_assert_eq(uvw_var_declare(ns, "a", NULL, &a), 0);
  cr_assert_eq(uvw_var_declare(ns, "b", NULL, &b), 0);
  wt_manifest_t w;
  wt_init(&w, ID);
  wt_int(wt_entry(&w, ns, "a", 1), 100);
  wt_entry(&w, ns, "b", 0);
  wt_string(wt_entry(&w, ns, "stub", 1), "new");
  uvw_manifest_t *m = manifest(&w);
  uvw_context_t *ctx = wt_enter_new();
  if (armed) {
    wt_set(a, uvw_value_int(1));
    wt_set(b, uvw_value_int(2));
  }
  const void *chain = uvw_context_chain(ctx);
  int done = 0;
  for (long n = 1; n < 200 && !done; n++) {
    tu_fail_alloc_after(n);
    int rc = uvw_manifest_mount(m);
    tu_restore_alloc();
    if (rc == 0) {
      done = 1;
      break;
    }
    cr_assert_eq(rc, UVW_ENOMEM, "allocation %ld: rc %d", n, rc);
    cr_assert_eq(uvw_context_chain(ctx), chain, "allocation %ld: chain untouched", n);
    cr_assert_eq(uvw_context_size(ctx), armed ? 2u : 0u);
    if (armed) {
      cr_assert_eq(uvw_value_as_int(uvw_context_lookup(ctx, a)), 1);
      cr_assert_eq(uvw_value_as_int(uvw_context_lookup(ctx, b)), 2);
    }
  }
  cr_assert(done);
  cr_assert_eq(uvw_value_as_int(uvw_context_lookup(ctx, a)), 100);
  cr_assert_null(uvw_context_lookup(ctx, b));
  wt_leave(ctx);
  uvw_manifest_free(m);
}

Test(mount, allocation_failures_leave_a_fresh_context_untouched) { mount_under_failures(0); }
Test(mount, allocation_failures_leave_a_merged_context_untouched) { mount_under_failures(1); }
