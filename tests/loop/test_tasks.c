/* Tasks and the task factory on a real loop (docs/testing.md rows 10, 11, 12,
 * 14 task parts, 15, 23, 24). */
#include "looptest.h"

static uvw_var_t *var;
static uv_loop_t loop;

static void setup(void) {
  var = tu_var("v", NULL);
  cr_assert_eq(uv_loop_init(&loop), 0);
}
TestSuite(tasks, .init = setup);

typedef struct {
  long seen;
  char id[33];
  int ran;
  uvw_task_t *current;
  size_t pending_resets;
} seen_t;

static void look(uvw_task_t *task, void *arg) {
  seen_t *s = arg;
  s->ran = 1;
  s->seen = lt_read(var);
  lt_chain_id(s->id);
  s->current = uvw_task_current();
  s->pending_resets = uvw_context_pending_reset_count(uvw_context_current());
  cr_assert_eq(uvw_task_context(task), uvw_context_current());
  lt_write(var, 1000); /* never reaches the parent or a sibling */
}

/* Row 10: new id, inherited values, dropped resets, isolated writes;
 * siblings distinct; grandchildren too. */
static seen_t grand;
static void spawn_grandchild(uvw_task_t *task, void *arg) {
  look(task, arg);
  lt_write(var, 20);
  cr_assert_eq(uvw_task_spawn(&loop, look, &grand, NULL, NULL), 0);
}

Test(tasks, spawned_tasks_fork_the_chain) {
  uvw_var_t *r = tu_var("r", NULL);
  uvw_token_t *tok;
  uvw_value_t *one = uvw_value_int(1);
  lt_write(var, 5);
  uvw_set(r, one, &tok);
  uvw_reset(r, tok); /* a pending reset the fork must drop */
  uvw_token_free(tok);
  uvw_value_unref(one);
  char parent[33];
  lt_chain_id(parent);
  seen_t a = {0}, b = {0};
  uvw_task_t *ta, *tb;
  cr_assert_eq(uvw_task_spawn(&loop, spawn_grandchild, &a, NULL, &ta), 0);
  cr_assert_eq(uvw_task_spawn(&loop, look, &b, NULL, &tb), 0);
  cr_assert_not(a.ran, "spawn schedules; it does not run the task inline");
  lt_finish(&loop);
  cr_assert(a.ran && b.ran && grand.ran);
  cr_assert_eq(a.seen, 5, "inherits the parent's values");
  cr_assert_eq(b.seen, 5, "a sibling's write is not seen");
  cr_assert_eq(grand.seen, 20, "the grandchild inherits its parent's write");
  cr_assert_eq(a.pending_resets, 0, "pending resets are dropped");
  cr_assert_str_neq(a.id, parent);
  cr_assert_str_neq(a.id, b.id);
  cr_assert_str_neq(grand.id, a.id);
  cr_assert_str_neq(grand.id, parent);
  cr_assert_eq(a.current, ta, "the task is current while it runs");
  cr_assert_eq(lt_read(var), 5, "the parent kept its value");
  cr_assert(uvw_task_finished(ta) && uvw_task_finished(tb));
  cr_assert_null(uvw_task_current(), "no task outside");
  uvw_task_unref(ta);
  uvw_task_unref(tb);
}

/* Row 11. */
Test(tasks, a_task_spawned_from_an_unarmed_parent_stays_unarmed) {
  seen_t s = {0};
  cr_assert_not(uvw_context_is_armed(uvw_context_current()));
  uvw_task_spawn(&loop, look, &s, NULL, NULL);
  cr_assert(s.id[0] == '\0');
  lt_finish(&loop);
  cr_assert(s.ran);
  cr_assert_eq(s.seen, -1);
  cr_assert_str_eq(s.id, "", "unarmed: no chain id in the task");
}

/* Row 12. */
static uvw_token_t *parent_token;
static int child_reset_rc;
static void reset_parents_token(uvw_task_t *task, void *arg) {
  (void)task;
  (void)arg;
  child_reset_rc = uvw_reset(var, parent_token);
}

Test(tasks, a_child_cannot_reset_its_parents_token) {
  uvw_value_t *v = uvw_value_int(9);
  uvw_set(var, v, &parent_token);
  uvw_value_unref(v);
  uvw_task_spawn(&loop, reset_parents_token, NULL, NULL, NULL);
  lt_finish(&loop);
  cr_assert_eq(child_reset_rc, UVW_ETOKEN_CONTEXT);
  cr_assert_not(uvw_token_used(parent_token));
  cr_assert_eq(uvw_reset(var, parent_token), 0, "the parent still can");
  uvw_token_free(parent_token);
}

/* A task lives until its registrations are done; its callbacks carry it. */
typedef struct {
  uv_timer_t timer;
  uvw_task_t *in_callback;
  int finished_in_callback;
  int done;
} later_t;

static void later_cb(uv_timer_t *t) {
  later_t *l = t->data;
  l->in_callback = uvw_task_current();
  l->finished_in_callback = uvw_task_finished(l->in_callback);
  uvw_close((uv_handle_t *)t, NULL);
}
static void start_timer(uvw_task_t *task, void *arg) {
  (void)task;
  later_t *l = arg;
  uv_timer_init(&loop, &l->timer);
  l->timer.data = l;
  uvw_timer_start(&l->timer, later_cb, 1, 0);
}
static void on_done(uvw_task_t *task, void *arg) {
  (void)task;
  ((later_t *)arg)->done++;
}

Test(tasks, a_task_finishes_when_its_body_and_registrations_are_done) {
  later_t l = {0};
  uvw_task_t *t;
  uvw_task_options_t opts = {NULL, on_done, &l};
  uvw_task_spawn(&loop, start_timer, &l, &opts, &t);
  lt_finish(&loop);
  cr_assert_eq(l.in_callback, t, "the task is current in callbacks it registered");
  cr_assert_not(l.finished_in_callback, "and not finished while they are pending");
  cr_assert(uvw_task_finished(t));
  cr_assert_eq(l.done, 1, "done callback once");
  uvw_task_unref(t);
}

/* Row 14 (task parts): a pending owner task and synchronous code on the
 * owning thread; a finished owner task. */
static uvw_context_t *driven;
static int sync_read_rc, after_finish_rc, other_task_rc;
static void owner_body(uvw_task_t *task, void *arg) {
  (void)task;
  (void)arg;
  lt_write(var, 31); /* the task owns the chain of `driven` */
}
static void other_body(uvw_task_t *task, void *arg) {
  (void)task;
  (void)arg;
  uvw_value_t *out;
  uvw_context_enter(driven);
  other_task_rc = uvw_get(var, &out);
  uvw_context_exit(driven);
}

Test(tasks, guard_task_check_no_false_positives_and_a_real_one) {
  driven = uvw_context_new();
  uvw_context_enter(driven);
  lt_write(var, 30);
  uvw_context_exit(driven);
  uvw_task_t *owner;
  uvw_task_options_t opts = {driven, NULL, NULL};
  cr_assert_eq(uvw_task_spawn(&loop, owner_body, NULL, &opts, &owner), 0);
  /* Owner pending, loop not running: synchronous code on this thread reads. */
  uvw_value_t *out;
  uvw_context_enter(driven);
  sync_read_rc = uvw_get(var, &out);
  uvw_context_exit(driven);
  cr_assert_eq(sync_read_rc, 0, "no current task never raises");
  /* Another live task touching the chain the owner task drives trips. */
  uvw_task_t *keep;
  uvw_task_spawn(&loop, other_body, NULL, NULL, &keep);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert(uvw_task_finished(owner));
  cr_assert_eq(other_task_rc, 0, "the owner finished first (FIFO), so no contention");
  uvw_context_enter(driven);
  after_finish_rc = uvw_get(var, &out);
  uvw_context_exit(driven);
  cr_assert_eq(after_finish_rc, 0, "a finished owner task never raises");
  cr_assert_eq(uvw_value_as_int(out), 31);
  uvw_task_unref(owner);
  uvw_task_unref(keep);
  uvw_context_unref(driven);
  cr_assert_eq(uvw_loop_close(&loop), 0);
}

static int contending_rc;
static char contending_kind[16];
static void park(uv_timer_t *t) { uvw_close((uv_handle_t *)t, NULL); }
static void owner_with_timer(uvw_task_t *task, void *arg) {
  (void)task;
  uv_timer_t *t = arg;
  lt_write(var, 41);
  uv_timer_init(&loop, t);
  uvw_timer_start(t, park, 20, 0); /* the owner stays live until it fires */
}
static void contender(uvw_task_t *task, void *arg) {
  (void)task;
  (void)arg;
  uvw_value_t *out;
  uvw_context_enter(driven);
  contending_rc = uvw_get(var, &out);
  if (contending_rc) snprintf(contending_kind, sizeof contending_kind, "%s", uvw_error_field(uvw_last_error(), "kind"));
  uvw_context_exit(driven);
}

Test(tasks, another_task_touching_a_live_tasks_chain_is_task_contention) {
  driven = uvw_context_new();
  uvw_context_enter(driven);
  lt_write(var, 40);
  uvw_context_exit(driven);
  uv_timer_t t;
  uvw_task_options_t opts = {driven, NULL, NULL};
  uvw_task_spawn(&loop, owner_with_timer, &t, &opts, NULL);
  uvw_task_spawn(&loop, contender, NULL, NULL, NULL);
  lt_finish(&loop);
  cr_assert_eq(contending_rc, UVW_ECONTENTION);
  cr_assert_str_eq(contending_kind, "task");
  uvw_context_unref(driven);
}

/* Row 15. */
static void quick(uvw_task_t *task, void *arg) {
  (void)task;
  (void)arg;
  lt_write(var, 1);
}

Test(tasks, an_armed_context_drives_one_live_task_at_a_time) {
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  lt_write(var, 1);
  uvw_context_exit(ctx);
  uvw_task_options_t opts = {ctx, NULL, NULL};
  uvw_task_t *first, *second = NULL;
  cr_assert_eq(uvw_task_spawn(&loop, quick, NULL, &opts, &first), 0);
  cr_assert_eq(uvw_task_spawn(&loop, quick, NULL, &opts, &second), UVW_ECONTENTION);
  cr_assert_null(second);
  const uvw_error_t *e = uvw_last_error();
  cr_assert_str_eq(uvw_error_field(e, "kind"), "create_task");
  char owner[24];
  snprintf(owner, sizeof owner, "%llu", (unsigned long long)uvw_task_id(first));
  cr_assert_str_eq(uvw_error_field(e, "owner_task"), owner);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert(uvw_task_finished(first));
  cr_assert_eq(uvw_task_spawn(&loop, quick, NULL, &opts, &second), 0, "after the first finished");
  lt_finish(&loop);
  uvw_task_unref(first);
  uvw_task_unref(second);
  uvw_context_unref(ctx);
}

/* ---- the factory (rows 23, 24) ------------------------------------------- */

/* A third-party factory: counts, then delegates to its inner factory or, at
 * the bottom of the chain, creates the task itself. */
static int third_party_calls;
static int third_party_create(uvw_task_factory_t *self, uv_loop_t *l, uvw_task_body_cb fn, void *arg,
                              const uvw_task_options_t *opts, uvw_task_t **out) {
  third_party_calls++;
  return self->inner ? self->inner->create(self->inner, l, fn, arg, opts, out) : uvw_task_create(l, fn, arg, opts, out);
}

static void arm_in_callback(void *arg) {
  (void)arg;
  lt_write(var, 1);
}

Test(tasks, first_arming_installs_the_factory_once_and_wraps_one_present) {
  /* A factory already present before uvwool arms anything on the loop. */
  uvw_task_factory_t base = {third_party_create, NULL, NULL};
  cr_assert_eq(uvw_loop_set_task_factory(&loop, &base), 0);
  cr_assert_not(uvw_loop_task_factory_installed(&loop));
  uvw_loop_call_soon(&loop, arm_in_callback, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert(uvw_loop_task_factory_installed(&loop), "arming in a loop callback installed it");
  uvw_task_factory_t *top = uvw_loop_task_factory(&loop);
  cr_assert_neq(top, &base);
  cr_assert_eq(top->inner, &base, "the present factory is wrapped");
  cr_assert_eq(uvw_loop_install_task_factory(&loop), 0);
  cr_assert_eq(uvw_loop_task_factory(&loop), top, "idempotent");
  static seen_t through_base;
  char parent[33];
  lt_write(var, 6);
  lt_chain_id(parent);
  third_party_calls = 0;
  cr_assert_eq(uvw_task_spawn(&loop, look, &through_base, NULL, NULL), 0);
  cr_assert_eq(third_party_calls, 1, "the wrapped factory still runs");
  lt_finish(&loop);
  cr_assert_eq(through_base.seen, 6);
  cr_assert_str_neq(through_base.id, parent, "in uvwool's fork");
}

static seen_t via_stack;
Test(tasks, wrapped_and_buried_factories_still_run_and_are_recognised) {
  cr_assert_eq(uvw_loop_install_task_factory(&loop), 0);
  uvw_task_factory_t *ours = uvw_loop_task_factory(&loop);
  uvw_task_factory_t later = {third_party_create, ours, NULL}; /* keeps the inner pointer */
  uvw_loop_set_task_factory(&loop, &later);
  cr_assert(uvw_loop_task_factory_installed(&loop), "recognised when buried");
  cr_assert_eq(uvw_loop_install_task_factory(&loop), 0);
  cr_assert_eq(uvw_loop_task_factory(&loop), &later, "not re-installed on top");
  lt_write(var, 8);
  char parent[33];
  lt_chain_id(parent);
  third_party_calls = 0;
  cr_assert_eq(uvw_task_spawn(&loop, look, &via_stack, NULL, NULL), 0);
  cr_assert_eq(third_party_calls, 1, "the later factory runs");
  lt_finish(&loop);
  cr_assert_eq(via_stack.seen, 8);
  cr_assert_str_neq(via_stack.id, parent, "and uvwool's fork still happened");
}

static int displaced_set_rc, displaced_reset_rc, displaced_get_rc, displaced_mount_rc, recovered_rc;
static uvw_manifest_t *incoming;
static void write_after_displacement(void *arg) {
  uvw_token_t **tok = arg;
  uvw_value_t *v = uvw_value_int(3), *out;
  displaced_get_rc = uvw_get(var, &out);
  displaced_set_rc = uvw_set(var, v, NULL);
  displaced_reset_rc = uvw_reset(var, *tok);
  displaced_mount_rc = uvw_manifest_mount(incoming);
  uvw_loop_install_task_factory(&loop);
  recovered_rc = uvw_set(var, v, NULL);
  uvw_value_unref(v);
}
static void arm_and_token(void *arg) {
  uvw_value_t *v = uvw_value_int(2);
  uvw_set(var, v, arg);
  uvw_value_unref(v);
}

Test(tasks, a_factory_that_drops_uvwools_is_reported_at_the_next_write) {
  static uvw_token_t *tok;
  uvw_loop_call_soon(&loop, arm_and_token, &tok); /* first arming: installs */
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert(uvw_loop_task_factory_installed(&loop));
  uvw_task_factory_t rogue = {third_party_create, NULL, NULL}; /* no inner pointer */
  uvw_loop_set_task_factory(&loop, &rogue);
  lt_write(var, 1); /* not in a callback of the loop: no report here */
  void *bytes;
  size_t len;
  cr_assert_eq(uvw_manifest_encode(NULL, &bytes, &len), 0);
  cr_assert_eq(uvw_manifest_decode(bytes, len, &incoming), 0);
  uvw_free(bytes);
  uvw_loop_call_soon(&loop, write_after_displacement, &tok);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(displaced_get_rc, 0, "get never reports displacement");
  cr_assert_eq(displaced_set_rc, UVW_EDISPLACED);
  cr_assert_eq(displaced_reset_rc, UVW_EDISPLACED);
  cr_assert_eq(displaced_mount_rc, UVW_EDISPLACED, "mount reports it too");
  uvw_manifest_free(incoming);
  cr_assert_eq(recovered_rc, 0, "installing again recovers");
  cr_assert(uvw_loop_task_factory_installed(&loop));
  cr_assert_eq(uvw_loop_task_factory(&loop)->inner, &rogue);
  uvw_token_free(tok);
  lt_finish(&loop);
}

static long no_fork_seen, all_seen;
static uvw_var_t *no_fork;
static void policy_body(uvw_task_t *task, void *arg) {
  (void)task;
  (void)arg;
  no_fork_seen = lt_read(no_fork);
  all_seen = lt_read(var);
}

Test(tasks, spawned_tasks_leave_out_variables_that_do_not_cross_forks) {
  no_fork = tu_var("no_fork", NULL);
  cr_assert_eq(uvw_var_set_policy(no_fork, UVW_PROPAGATE_ALL & ~UVW_PROPAGATE_FORK), 0);
  lt_write(var, 3);
  lt_write(no_fork, 4);
  cr_assert_eq(uvw_task_spawn(&loop, policy_body, NULL, NULL, NULL), 0);
  lt_finish(&loop);
  cr_assert_eq(all_seen, 3);
  cr_assert_eq(no_fork_seen, -1);
}

static int never_ran;
static void never(uvw_task_t *task, void *arg) {
  (void)task;
  (void)arg;
  never_ran = 1;
}

Test(tasks, a_task_abandoned_by_a_closing_loop_finishes_without_running) {
  size_t before = tu_released();
  uvw_value_t *v = tu_counted_value();
  uvw_set(var, v, NULL);
  uvw_value_unref(v);
  uvw_task_t *t;
  cr_assert_eq(uvw_task_spawn(&loop, never, NULL, NULL, &t), 0);
  uvw_value_t *other = uvw_value_int(0);
  uvw_set(var, other, NULL); /* only the task's fork holds the counted value now */
  uvw_value_unref(other);
  cr_assert_eq(uvw_loop_close(&loop), 0);
  cr_assert_not(never_ran);
  cr_assert(uvw_task_finished(t));
  cr_assert_null(uvw_task_context(t));
  cr_assert_eq(tu_released(), before + 1, "the task's fork was released");
  uvw_task_unref(t);
}
