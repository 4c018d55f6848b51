/* The work queue, to_thread and threads (docs/testing.md rows 20, 21 and the
 * thread rules of docs/semantics.md §5). */
#include <pthread.h>

#include "looptest.h"

static uvw_var_t *var;
static uv_loop_t loop;

static void setup(void) {
  var = tu_var("v", NULL);
  cr_assert_eq(uv_loop_init(&loop), 0);
}
TestSuite(work, .init = setup);

typedef struct {
  uv_work_t req;
  int work_rc, after_rc;
  long work_seen, after_seen;
  char work_kind[16], work_id[33], after_id[33];
  uint64_t work_thread;
  int after_status;
} job_t;

static void touching_work(uv_work_t *req) {
  job_t *j = req->data;
  uvw_value_t *out = NULL;
  j->work_thread = uvw_thread_generation();
  j->work_rc = uvw_get(var, &out);
  if (j->work_rc == UVW_ECONTENTION)
    snprintf(j->work_kind, sizeof j->work_kind, "%s", uvw_error_field(uvw_last_error(), "kind"));
  else if (j->work_rc == 0)
    j->work_seen = (long)uvw_value_as_int(out);
  lt_chain_id(j->work_id);
  if (j->work_rc == 0) {
    uvw_value_t *v = uvw_value_int(900);
    uvw_set(var, v, NULL); /* to_thread: stays in the fork */
    uvw_value_unref(v);
  }
}

static void after(uv_work_t *req, int status) {
  job_t *j = req->data;
  uvw_value_t *out = NULL;
  j->after_status = status;
  j->after_rc = uvw_get(var, &out);
  j->after_seen = out ? (long)uvw_value_as_int(out) : -1;
  lt_chain_id(j->after_id);
}

/* Row 20. */
Test(work, plain_work_touching_a_variable_is_thread_contention_after_is_fine) {
  job_t j = {0};
  j.req.data = &j;
  lt_write(var, 4);
  char me[33];
  lt_chain_id(me);
  cr_assert_eq(uvw_queue_work(&loop, &j.req, touching_work, after), 0);
  lt_write(var, 5);
  lt_finish(&loop);
  cr_assert_eq(j.work_rc, UVW_ECONTENTION);
  cr_assert_str_eq(j.work_kind, "thread");
  cr_assert_neq(j.work_thread, uvw_thread_generation(), "really on another thread");
  cr_assert_str_eq(j.work_id, me, "the worker ran in the captured context");
  cr_assert_eq(j.after_rc, 0, "the after-callback on the loop is fine");
  cr_assert_eq(j.after_seen, 4, "and sees the value at submission");
  cr_assert_str_eq(j.after_id, me);
  cr_assert_eq(j.req.data, &j);
}

/* Row 21. */
Test(work, to_thread_runs_in_a_detached_fork_and_never_writes_back) {
  job_t j = {0};
  j.req.data = &j;
  lt_write(var, 6);
  char me[33];
  lt_chain_id(me);
  cr_assert_eq(uvw_to_thread(&loop, &j.req, touching_work, after), 0);
  lt_finish(&loop);
  cr_assert_eq(j.work_rc, 0, "never trips the guard");
  cr_assert_eq(j.work_seen, 6, "sees the values");
  cr_assert_str_neq(j.work_id, me, "on a fresh chain id");
  cr_assert_neq(j.work_id[0], '\0');
  cr_assert_eq(j.after_seen, 6, "the worker's write never flows back");
  cr_assert_str_eq(j.after_id, me);
  cr_assert_eq(lt_read(var), 6);
}

Test(work, to_thread_when_unarmed_is_a_plain_offload) {
  job_t j = {0};
  j.req.data = &j;
  cr_assert_eq(uvw_to_thread(&loop, &j.req, touching_work, after), 0);
  lt_finish(&loop);
  cr_assert_eq(j.work_rc, UVW_ELOOKUP, "nothing bound, nothing armed");
  cr_assert_str_eq(j.work_id, "");
  cr_assert_eq(j.after_rc, UVW_ELOOKUP);
}

static int no_touch_ran;
static void no_touch(uv_work_t *req) {
  (void)req;
  no_touch_ran = 1;
}

Test(work, offload_that_touches_nothing_is_fine_and_null_after_is_allowed) {
  uv_work_t req;
  lt_write(var, 1);
  cr_assert_eq(uvw_queue_work(&loop, &req, no_touch, NULL), 0);
  lt_finish(&loop);
  cr_assert(no_touch_ran);
  cr_assert_eq(uvw_queue_work(&loop, &req, NULL, NULL), UV_EINVAL, "libuv's own answer");
}

typedef struct {
  int rc;
  long seen;
  char id[33];
  uint64_t owner, me;
} thread_probe_t;

static void thread_body(void *arg) {
  thread_probe_t *p = arg;
  uvw_value_t *out = NULL;
  p->rc = uvw_get_or(var, NULL, &out);
  p->seen = out ? (long)uvw_value_as_int(out) : -1;
  lt_chain_id(p->id);
  p->owner = uvw_context_owner_thread(uvw_context_current());
  p->me = uvw_thread_generation();
}

Test(work, uvw_thread_create_forks_plain_uv_thread_create_starts_unarmed) {
  lt_write(var, 12);
  char me[33];
  lt_chain_id(me);
  thread_probe_t forked = {0}, plain = {0}, ex = {0};
  uv_thread_t a, b, c;
  cr_assert_eq(uvw_thread_create(&a, thread_body, &forked), 0);
  cr_assert_eq(uv_thread_create(&b, thread_body, &plain), 0);
  uv_thread_options_t opts = {UV_THREAD_HAS_STACK_SIZE, 1 << 20};
  cr_assert_eq(uvw_thread_create_ex(&c, &opts, thread_body, &ex), 0);
  uv_thread_join(&a);
  uv_thread_join(&b);
  uv_thread_join(&c);
  cr_assert_eq(forked.rc, 0);
  cr_assert_eq(forked.seen, 12);
  cr_assert_str_neq(forked.id, me);
  cr_assert_eq(forked.owner, forked.me, "the thread owns its fork");
  cr_assert_eq(ex.seen, 12);
  cr_assert_str_neq(ex.id, forked.id);
  cr_assert_eq(plain.rc, 0);
  cr_assert_eq(plain.seen, -1, "a plain thread starts unarmed");
  cr_assert_str_eq(plain.id, "");
  cr_assert_eq(uvw_loop_close(&loop), 0);
}

/* Per-variable policy on the thread edges (issue: policy honoured on fork
 * and thread offload). */
static long policy_seen_all, policy_seen_local;
static uvw_var_t *local_only;
static void policy_work(uv_work_t *req) {
  (void)req;
  policy_seen_all = lt_read(var);
  policy_seen_local = lt_read(local_only);
}

Test(work, to_thread_leaves_out_variables_that_do_not_cross_threads) {
  local_only = tu_var("local_only", NULL);
  cr_assert_eq(uvw_var_set_policy(local_only, UVW_PROPAGATE_ALL & ~UVW_PROPAGATE_THREAD), 0);
  lt_write(var, 1);
  lt_write(local_only, 2);
  uv_work_t req;
  cr_assert_eq(uvw_to_thread(&loop, &req, policy_work, NULL), 0);
  lt_finish(&loop);
  cr_assert_eq(policy_seen_all, 1);
  cr_assert_eq(policy_seen_local, -1, "a thread-local-only variable stays behind");
  cr_assert_eq(lt_read(local_only), 2, "and stays bound here");
}
