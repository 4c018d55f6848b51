/* The local demo: set/get/copy/run and the thread guard in one process, then
 * the same context following work through a libuv loop, narrated. The main
 * demo (demo.c) crosses a process boundary. */
#include <pthread.h>
#include <stdio.h>
#include <uvwool.h>
#include <uvwool/loop.h>

static uvw_var_t *request_id, *tenant;

static void show(const char *where) {
  uvw_value_t *rid = NULL, *ten = NULL;
  int rc = uvw_get(request_id, &rid);
  uvw_get_or(tenant, NULL, &ten);
  char id[33] = "(unarmed)";
  uvw_context_chain_id(uvw_context_current(), id);
  printf("  %-34s request_id=%-8s tenant=%-8s chain=%s\n", where,
         rc == 0 ? uvw_value_as_string(rid) : uvw_err_name(rc), ten ? uvw_value_as_string(ten) : "(none)", id);
}

static void in_copy(void *arg) {
  (void)arg;
  show("inside run(copy):");
  uvw_value_t *t = uvw_value_cstring("acme");
  uvw_set(tenant, t, NULL);
  uvw_value_unref(t);
  show("after set(tenant) in the copy:");
}

static void *foreign_thread(void *arg) {
  uvw_context_t *armed = arg;
  uvw_value_t *out;
  printf("  another OS thread (generation %llu) enters the armed copy and reads:\n",
         (unsigned long long)uvw_thread_generation());
  uvw_context_enter(armed);
  int rc = uvw_get(request_id, &out);
  uvw_context_exit(armed);
  const uvw_error_t *e = uvw_last_error();
  printf("  -> %s (%s)\n     %s\n", uvw_err_name(rc), uvw_error_kind_name(uvw_error_kind(e)), uvw_error_message(e));
  printf("     fields: chain_id=%s kind=%s owner_thread=%s offending_thread=%s\n",
         uvw_error_field(e, "chain_id"), uvw_error_field(e, "kind"), uvw_error_field(e, "owner_thread"),
         uvw_error_field(e, "offending_thread"));
  uvw_context_t *fork = uvw_context_fork(armed, UVW_PROPAGATE_THREAD);
  uvw_context_enter(fork);
  show("the same thread in a fork:");
  uvw_context_exit(fork);
  uvw_context_unref(fork);
  return NULL;
}

/* ---- on a libuv loop ---------------------------------------------------------- */

static void on_timer(uv_timer_t *t) {
  show("timer callback (set before start):");
  uvw_close((uv_handle_t *)t, NULL);
}

static void offloaded(uv_work_t *req) {
  uvw_value_t *out;
  int rc = uvw_get(request_id, &out);
  printf("  %s worker thread reads request_id -> %s%s%s\n", (const char *)req->data,
         rc == 0 ? uvw_value_as_string(out) : uvw_err_name(rc), rc == 0 ? "" : ": ",
         rc == 0 ? "" : uvw_error_message(uvw_last_error()));
}

static void offload_done(uv_work_t *req, int status) {
  (void)status;
  char where[64];
  snprintf(where, sizeof where, "after-callback of %s:", (const char *)req->data);
  show(where);
}

static void in_task(uvw_task_t *task, void *arg) {
  (void)arg;
  printf("  task %llu starts in a fork of the spawner's context:\n", (unsigned long long)uvw_task_id(task));
  show("  inside the task:");
  uvw_value_t *t = uvw_value_cstring("task-tenant");
  uvw_set(tenant, t, NULL);
  uvw_value_unref(t);
  show("  after the task's own set:");
}

static void loop_part(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  printf("\n6. On a libuv loop: uvw_timer_start captures the context at registration:\n");
  uvw_value_t *rid = uvw_value_cstring("req-77");
  uvw_set(request_id, rid, NULL);
  uvw_value_unref(rid);
  uv_timer_t timer;
  uv_timer_init(&loop, &timer);
  uvw_timer_start(&timer, on_timer, 10, 0);
  uv_run(&loop, UV_RUN_DEFAULT);

  printf("\n7. Offloading: plain uv_queue_work trips the guard; uvw_to_thread runs a detached fork:\n");
  uv_work_t plain = {.data = "uvw_queue_work"}, forked = {.data = "uvw_to_thread"};
  uvw_queue_work(&loop, &plain, offloaded, offload_done);
  uv_run(&loop, UV_RUN_DEFAULT);
  uvw_to_thread(&loop, &forked, offloaded, offload_done);
  uv_run(&loop, UV_RUN_DEFAULT);

  printf("\n8. A spawned task forks the chain (new id, same values, its writes stay its own):\n");
  uvw_task_t *task;
  uvw_task_spawn(&loop, in_task, NULL, NULL, &task);
  uv_run(&loop, UV_RUN_DEFAULT);
  show("the spawner afterwards:");
  uvw_task_unref(task);
  uvw_loop_close(&loop);
}

int main(void) {
  uvw_value_t *anon = uvw_value_cstring("anonymous");
  uvw_var_declare("demo", "request_id", NULL, &request_id);
  uvw_var_declare("demo", "tenant", NULL, &tenant);
  uvw_value_unref(anon);
  printf("uvwool %s core demo\n\n1. A fresh thread is unarmed; request_id has no default:\n", uvw_version_string());
  show("start:");

  printf("\n2. set(request_id) arms the context with a new chain id:\n");
  uvw_value_t *rid = uvw_value_cstring("req-42");
  uvw_token_t *tok;
  uvw_set(request_id, rid, &tok);
  uvw_value_unref(rid);
  show("after set:");

  printf("\n3. copy_context() + run(): the copy sees the value; its writes stay in it:\n");
  uvw_context_t *copy = uvw_context_copy_current();
  uvw_context_run(copy, in_copy, NULL);
  show("back outside:");

  printf("\n4. The thread guard: an armed chain touched from a foreign thread:\n");
  pthread_t th;
  pthread_create(&th, NULL, foreign_thread, copy);
  pthread_join(th, NULL);

  printf("\n5. reset(token) restores the previous state, once:\n");
  uvw_reset(request_id, tok);
  show("after reset:");
  printf("  a second reset with the same token -> %s\n", uvw_err_name(uvw_reset(request_id, tok)));
  uvw_token_free(tok);
  uvw_context_unref(copy);
  loop_part();
  return 0;
}
