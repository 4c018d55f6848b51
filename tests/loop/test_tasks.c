/* Tasks and the task factory on a real loop (docs/testing.md rows 10, 11, 12,
 * 14 task parts, 15, 23, 24). */
#include "looptest.h"
#include "task.h" /* the core task: its pending count */

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

static void arm_nothing(void *arg) { (void)arg; }

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

static int done_calls;
static void count_done(uvw_task_t *task, void *arg) {
  (void)task;
  (void)arg;
  done_calls++;
}

/* A failing creation in an explicit context changes nothing: the chain
 * still names its old owner (none), so a task can still be made in it, and
 * the failed task is not kept alive by the chain. Every allocation of the
 * creation fails in turn (the task, the stamped chain, the done callback's
 * reserved record, the queued start). */
static void creation_in_a_context_fails_cleanly(int spawn) {
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  lt_write(var, 1); /* armed: the creation must stamp its chain */
  uvw_context_exit(ctx);
  cr_assert_eq(uvw_loop_call_soon(&loop, arm_nothing, NULL), 0); /* the loop's state exists */
  uvw_task_options_t opts = {ctx, count_done, NULL};
  const void *chain = uvw_context_chain(ctx);
  int rc = UVW_ENOMEM;
  long n;
  for (n = 1; n < 100 && rc == UVW_ENOMEM; n++) {
    uvw_task_t *t = NULL;
    tu_fail_alloc_after(n);
    rc = spawn ? uvw_task_spawn(&loop, quick, NULL, &opts, &t) : uvw_task_create(&loop, quick, NULL, &opts, &t);
    tu_restore_alloc();
    if (rc == 0) {
      cr_assert_neq(uvw_context_chain(ctx), chain, "allocation %ld: the claim is published on success", n);
      uvw_task_unref(t);
      break;
    }
    cr_assert_eq(rc, UVW_ENOMEM, "allocation %ld: rc %d (%s)", n, rc, uvw_error_message(uvw_last_error()));
    cr_assert_null(t, "allocation %ld: no task handed out", n);
    cr_assert_eq(uvw_context_chain(ctx), chain, "allocation %ld: the context's chain is untouched", n);
    uvw_task_t *other = NULL;
    cr_assert_eq(uvw_task_new_in(ctx, &other), 0, "allocation %ld: the context can still take a task: %s", n,
                 uvw_error_message(uvw_last_error()));
    uvw_task_finish(other);
    uvw_task_unref(other);
    chain = uvw_context_chain(ctx); /* new_in stamped it */
  }
  cr_assert_eq(rc, 0, "the creation succeeds once allocations do");
  cr_assert_gt(n, 2, "at least the task and the stamped chain were allocations that failed");
  done_calls = 0;
  lt_finish(&loop);
  cr_assert_eq(done_calls, 1, "only the task that was created ran its done callback");
  uvw_context_unref(ctx);
}

Test(tasks, a_failed_spawn_in_a_context_changes_nothing) { creation_in_a_context_fails_cleanly(1); }
Test(tasks, a_failed_create_in_a_context_changes_nothing) { creation_in_a_context_fails_cleanly(0); }

/* A runtime task entered in a loop callback and still entered when the
 * callback returns: the callback's end suspends it with a warning naming
 * it, so it is not stuck (its leave, resume and finish all work after). */
static int stray_warnings;
static char stray_task_field[32];
static void stray_sink(const uvw_error_t *w, void *arg) {
  (void)arg;
  if (strstr(uvw_error_message(w), "still entered at the end of a loop callback") == NULL) return;
  stray_warnings++;
  const char *f = uvw_error_field(w, "task");
  snprintf(stray_task_field, sizeof stray_task_field, "%s", f ? f : "");
}

static uvw_context_t *stray_above; /* the test's reference */
static void enter_and_return(void *arg) {
  uvw_task_t *rt = arg;
  cr_assert_eq(uvw_task_enter(rt), 0);
  lt_write(var, 42);
  stray_above = uvw_context_new();
  cr_assert_eq(uvw_context_enter(stray_above), 0); /* left entered above the task's own */
  lt_write(var, 43);
}

static void resume_and_check(void *arg) {
  uvw_task_t *rt = arg;
  cr_assert_eq(uvw_task_enter(rt), 0, "the suspended task can be resumed: %s", uvw_error_message(uvw_last_error()));
  cr_assert_eq(lt_read(var), 43, "resumed in the context it left above its own");
  cr_assert_eq(uvw_context_exit(uvw_context_current()), 0);
  cr_assert_eq(lt_read(var), 42, "then in its own");
  cr_assert_eq(uvw_task_leave(rt), 0);
}

Test(tasks, a_runtime_task_left_entered_by_a_callback_is_suspended_with_a_warning) {
  uvw_task_t *rt;
  cr_assert_eq(uvw_task_new(NULL, &rt), 0);
  uvw_set_warning_sink(stray_sink, NULL);
  stray_warnings = 0;
  cr_assert_eq(uvw_loop_call_soon(&loop, enter_and_return, rt), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(stray_warnings, 1, "one warning");
  char id[32];
  snprintf(id, sizeof id, "%llu", (unsigned long long)uvw_task_id(rt));
  cr_assert_str_eq(stray_task_field, id, "the warning names the task");
  cr_assert_null(uvw_task_current(), "no task current after the callback");
  cr_assert_neq(uvw_context_current(), uvw_task_context(rt), "the task's context is not current any more");
  long outside = lt_read(var);
  cr_assert_eq(outside, -1, "the loop thread's context never saw the task's writes (%ld)", outside);
  cr_assert_eq(uvw_task_leave(rt), 0, "the runtime's own leave still works (it was done for it)");
  cr_assert_eq(uvw_task_leave(rt), UVW_ENOTENTERED, "once");
  cr_assert_eq(uvw_loop_call_soon(&loop, resume_and_check, rt), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(stray_warnings, 1, "a task left properly is no warning");
  cr_assert_eq(uvw_task_finish(rt), 0, "and it can be finished");
  cr_assert(uvw_task_finished(rt));
  uvw_set_warning_sink(NULL, NULL);
  uvw_task_unref(rt);
  uvw_context_unref(stray_above);
  lt_finish(&loop);
}

Test(tasks, a_stray_runtime_task_can_be_finished_without_a_leave) {
  uvw_task_t *rt;
  cr_assert_eq(uvw_task_new(NULL, &rt), 0);
  uvw_set_warning_sink(stray_sink, NULL);
  stray_warnings = 0;
  cr_assert_eq(uvw_loop_call_soon(&loop, enter_and_return, rt), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(stray_warnings, 1);
  cr_assert_eq(uvw_task_finish(rt), 0, "%s", uvw_error_message(uvw_last_error()));
  cr_assert_null(uvw_task_context(rt));
  uvw_set_warning_sink(NULL, NULL);
  uvw_task_unref(rt);
  uvw_context_unref(stray_above);
  lt_finish(&loop);
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

/* ---- a registration made under every kind of task ---------------------------- */

/* What each kind of loop registration saw: the task current in its
 * callback(s) and the value of var captured at registration. */
enum { REG_TIMER, REG_FS, REG_WORK, REG_AFTER_WORK, REG_SOON, REG_COUNT };
typedef struct {
  uv_timer_t timer;
  uv_fs_t fs;
  uv_work_t work;
  uvw_task_t *expected; /* current at registration */
  uvw_task_t *seen[REG_COUNT];
  long value[REG_COUNT];
  int fired[REG_COUNT];
  int finished[REG_COUNT]; /* the task's finished flag seen in each callback */
} regs_t;

static void reg_saw(regs_t *r, int which, int read) {
  r->fired[which]++;
  r->seen[which] = uvw_task_current();
  r->value[which] = read ? lt_read(var) : 0;
  r->finished[which] = uvw_task_finished(r->seen[which]);
}
static void reg_timer_cb(uv_timer_t *t) {
  reg_saw(t->data, REG_TIMER, 1);
  uvw_close((uv_handle_t *)t, NULL);
}
static void reg_fs_cb(uv_fs_t *req) {
  reg_saw(req->data, REG_FS, 1);
  uv_fs_req_cleanup(req);
}
/* The work callback runs on a pool thread: it records the task only (a read
 * there would trip the thread guard, as asyncio.to_thread does). */
static void reg_work_cb(uv_work_t *req) { reg_saw(req->data, REG_WORK, 0); }
static void reg_after_cb(uv_work_t *req, int status) {
  cr_assert_eq(status, 0);
  reg_saw(req->data, REG_AFTER_WORK, 1);
}
static void reg_soon_cb(void *arg) { reg_saw(arg, REG_SOON, 1); }

/* Under whatever task is current: var = 77, then one of each registration. */
static void register_all(regs_t *r) {
  lt_write(var, 77);
  r->expected = uvw_task_current();
  uv_timer_init(&loop, &r->timer);
  r->timer.data = r->fs.data = r->work.data = r;
  cr_assert_eq(uvw_timer_start(&r->timer, reg_timer_cb, 1, 0), 0);
  cr_assert_eq(uvw_fs_stat(&loop, &r->fs, ".", reg_fs_cb), 0);
  cr_assert_eq(uvw_queue_work(&loop, &r->work, reg_work_cb, reg_after_cb), 0);
  cr_assert_eq(uvw_loop_call_soon(&loop, reg_soon_cb, r), 0);
}

static void assert_all_carried(const regs_t *r, const char *kind) {
  for (int k = 0; k < REG_COUNT; k++) {
    cr_assert_eq(r->fired[k], 1, "%s: registration %d fired once", kind, k);
    cr_assert_eq(r->seen[k], r->expected, "%s: registration %d carries the task it was made under", kind, k);
    if (k != REG_WORK) cr_assert_eq(r->value[k], 77, "%s: registration %d runs in its capture", kind, k);
  }
}

static size_t pending_of(uvw_task_t *t) { return atomic_load(&t->pending); }

Test(tasks, registrations_under_no_task_carry_none) {
  static regs_t r;
  memset(&r, 0, sizeof r);
  register_all(&r);
  lt_finish(&loop);
  cr_assert_null(r.expected);
  assert_all_carried(&r, "no task");
}

static void register_in_loop_task(uvw_task_t *task, void *arg) {
  (void)task;
  register_all(arg);
}

Test(tasks, registrations_under_a_loop_task_carry_it_and_keep_it_live) {
  static regs_t r;
  memset(&r, 0, sizeof r);
  uvw_task_t *t;
  cr_assert_eq(uvw_task_spawn(&loop, register_in_loop_task, &r, NULL, &t), 0);
  lt_finish(&loop);
  cr_assert_eq(r.expected, t);
  assert_all_carried(&r, "loop task");
  for (int k = 0; k < REG_COUNT; k++) cr_assert_eq(r.finished[k], 0, "live while its registrations are pending");
  cr_assert(uvw_task_finished(t));
  cr_assert_eq(pending_of(t), 0);
  uvw_task_unref(t);
}

/* The heap-buffer-overflow of a capture that took every task for a loop task
 * shows here under ASan: a runtime task is a bare core task. */
Test(tasks, registrations_under_a_runtime_task_carry_it_and_count_as_pending) {
  static regs_t r;
  memset(&r, 0, sizeof r);
  uvw_task_t *t;
  cr_assert_eq(uvw_task_new(NULL, &t), 0);
  cr_assert_eq(uvw_task_enter(t), 0);
  register_all(&r);
  cr_assert_eq(pending_of(t), 4, "timer, fs, work and call-soon each hold a pending count");
  cr_assert_eq(uvw_task_leave(t), 0);
  lt_finish(&loop);
  cr_assert_eq(r.expected, t);
  assert_all_carried(&r, "runtime task");
  cr_assert_eq(pending_of(t), 0, "every registration gave its count back");
  cr_assert_not(uvw_task_finished(t), "a runtime task finishes when its runtime says, not with its registrations");
  cr_assert_eq(uvw_task_finish(t), 0);
  uvw_task_unref(t);
}

Test(tasks, registrations_outlive_a_finished_runtime_task_and_keep_its_identity) {
  static regs_t r;
  memset(&r, 0, sizeof r);
  uvw_task_t *t;
  cr_assert_eq(uvw_task_new(NULL, &t), 0);
  cr_assert_eq(uvw_task_enter(t), 0);
  register_all(&r);
  cr_assert_eq(uvw_task_leave(t), 0);
  cr_assert_eq(uvw_task_finish(t), 0, "finishing does not wait for the registrations");
  uvw_task_unref(t); /* the registrations hold the object from here */
  lt_finish(&loop);
  assert_all_carried(&r, "finished runtime task");
  /* (The work callback may run on its pool thread before the finish.) */
  for (int k = 0; k < REG_COUNT; k++)
    if (k != REG_WORK) cr_assert_eq(r.finished[k], 1, "callback %d sees the task, finished", k);
}

static uvw_task_t *nested_runtime;
static uvw_task_t *after_leave;
static void register_in_nested_runtime(uvw_task_t *task, void *arg) {
  (void)task;
  cr_assert_eq(uvw_task_new(NULL, &nested_runtime), 0);
  cr_assert_eq(uvw_task_enter(nested_runtime), 0, "a loop task's body resumes a coroutine");
  register_all(arg);
  cr_assert_eq(uvw_task_leave(nested_runtime), 0);
  after_leave = uvw_task_current();
}

Test(tasks, registrations_under_a_runtime_task_nested_in_a_loop_task_carry_the_runtime_task) {
  static regs_t r;
  memset(&r, 0, sizeof r);
  uvw_task_t *outer;
  cr_assert_eq(uvw_task_spawn(&loop, register_in_nested_runtime, &r, NULL, &outer), 0);
  lt_finish(&loop);
  cr_assert_eq(after_leave, outer, "leaving the coroutine restores the loop task");
  cr_assert_eq(r.expected, nested_runtime);
  assert_all_carried(&r, "nested runtime task");
  cr_assert_eq(pending_of(nested_runtime), 0);
  cr_assert(uvw_task_finished(outer), "the innermost task owns a registration: the loop task did not wait");
  cr_assert_eq(uvw_task_finish(nested_runtime), 0);
  uvw_task_unref(nested_runtime);
  uvw_task_unref(outer);
}

static int loop_task_enter_rc, loop_task_leave_rc, loop_task_finish_rc;
static void try_driving_a_loop_task(uvw_task_t *task, void *arg) {
  (void)arg;
  loop_task_enter_rc = uvw_task_enter(task);
  loop_task_leave_rc = uvw_task_leave(task);
  loop_task_finish_rc = uvw_task_finish(task);
}

Test(tasks, a_loop_task_cannot_be_driven_through_the_runtime_calls) {
  uvw_task_t *t;
  cr_assert_eq(uvw_task_spawn(&loop, try_driving_a_loop_task, NULL, NULL, &t), 0);
  lt_finish(&loop);
  cr_assert_eq(loop_task_enter_rc, UVW_EINVAL);
  cr_assert_eq(loop_task_leave_rc, UVW_EINVAL);
  cr_assert_eq(loop_task_finish_rc, UVW_EINVAL);
  cr_assert(strstr(uvw_error_message(uvw_last_error()), "loop task") != NULL);
  cr_assert(uvw_task_finished(t), "finished by its loop all the same");
  uvw_task_unref(t);
}
