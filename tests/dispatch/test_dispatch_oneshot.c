/* One-shot dispatch to a real worker process (docs/testing.md row 29-31, 37), over a
 * unix socket and over TCP on loopback, and the round-robin pool. */
#include "harness.h"

static void value_there_and_back(const char *kind) {
  dh_open(kind, NULL);
  uvw_context_t *ctx = dh_enter("req-1");
  char chain[33];
  dh_chain_id(chain);
  dh_reply_t r = {0};
  uvw_value_t *n = uvw_value_int(41);
  cr_assert_eq(uvw_conn_dispatch(conn, "read_and_mutate", &n, 1, NULL, dh_record, &r, NULL), 0);
  uvw_value_unref(n);
  dh_run_until(&loop, &r.calls, 1, 30000);
  cr_assert_eq(r.status, 0, "%s", r.error_msg);
  cr_assert(r.done);
  cr_assert_str_eq(r.value, "saw:req-1", "the caller's value reached the routine");
  cr_assert_str_eq(r.request_id, "req-1+worker", "the routine's change came back");
  cr_assert_eq(r.counter, 42);
  cr_assert_str_eq(r.chain, chain, "apply-back merges: the caller keeps its chain id");
  /* The merge went into the dispatch's capture, like any callback's. */
  cr_assert_str_eq(dh_str(dh_request_id), "req-1");
  cr_assert_eq(dh_int(dh_counter), -1);
  dh_leave(ctx);
  dh_reply_clear(&r);
  dh_close();
}

Test(oneshot, value_reaches_the_routine_and_its_change_comes_back_over_a_pipe) { value_there_and_back("pipe"); }
Test(oneshot, value_reaches_the_routine_and_its_change_comes_back_over_tcp) { value_there_and_back("tcp"); }

Test(oneshot, an_unarmed_caller_gets_the_chain_the_routine_armed) {
  dh_open("pipe", NULL);
  uvw_context_t *ctx = dh_enter(NULL);
  cr_assert_not(uvw_context_is_armed(uvw_context_current()));
  dh_reply_t r = {0};
  cr_assert_eq(uvw_conn_dispatch(conn, "read_and_mutate", NULL, 0, NULL, dh_record, &r, NULL), 0);
  dh_run_until(&loop, &r.calls, 1, 30000);
  cr_assert_eq(r.status, 0);
  cr_assert_str_eq(r.value, "saw:-", "nothing was bound, nothing arrived");
  cr_assert_str_eq(r.request_id, "-+worker");
  cr_assert_eq(strlen(r.chain), 32, "the routine armed the chain and the caller mounted it");
  cr_assert_not(uvw_context_is_armed(uvw_context_current()));
  dh_leave(ctx);
  dh_reply_clear(&r);
  dh_close();
}

Test(oneshot, concurrent_dispatches_stay_isolated_and_sequential_ones_do_not_bleed) {
  dh_open("pipe", NULL);
  dh_reply_t ra = {0}, rb = {0}, rc = {0};
  uvw_context_t *a = dh_enter("A");
  cr_assert_eq(uvw_conn_dispatch(conn, "read_and_mutate", NULL, 0, NULL, dh_record, &ra, NULL), 0);
  dh_leave(a);
  uvw_context_t *b = dh_enter("B");
  cr_assert_eq(uvw_conn_dispatch(conn, "read_and_mutate", NULL, 0, NULL, dh_record, &rb, NULL), 0);
  dh_run_until(&loop, &ra.calls, 1, 30000);
  dh_run_until(&loop, &rb.calls, 1, 30000);
  cr_assert_str_eq(ra.value, "saw:A");
  cr_assert_str_eq(ra.request_id, "A+worker");
  cr_assert_str_eq(rb.value, "saw:B");
  cr_assert_str_eq(rb.request_id, "B+worker");
  cr_assert_str_neq(ra.chain, rb.chain);
  /* Sequential, same context, same chain id: the worker starts from what
   * this dispatch carries, not from the previous dispatch's mutation. */
  cr_assert_eq(uvw_conn_dispatch(conn, "read_and_mutate", NULL, 0, NULL, dh_record, &rc, NULL), 0);
  dh_run_until(&loop, &rc.calls, 1, 30000);
  cr_assert_str_eq(rc.value, "saw:B");
  cr_assert_str_eq(rc.chain, rb.chain);
  dh_leave(b);
  dh_reply_clear(&ra);
  dh_reply_clear(&rb);
  dh_reply_clear(&rc);
  dh_close();
}

Test(oneshot, mutations_made_before_a_raise_come_back_with_the_error) {
  dh_open("pipe", NULL);
  uvw_context_t *ctx = dh_enter("before");
  dh_reply_t r = {0};
  cr_assert_eq(uvw_conn_dispatch(conn, "raise_after_set", NULL, 0, NULL, dh_record, &r, NULL), 0);
  dh_run_until(&loop, &r.calls, 1, 30000);
  cr_assert_eq(r.status, UVW_EREMOTE);
  cr_assert_str_eq(r.error_type, "AppError", "the routine's own class name survives the trip");
  cr_assert_str_eq(r.error_msg, "the routine was asked to fail");
  cr_assert_str_eq(uvw_error_field(r.error, "reason"), "asked to");
  cr_assert_str_eq(r.request_id, "set-before-raise");
  dh_leave(ctx);
  dh_reply_clear(&r);
  dh_close();
}

Test(oneshot, an_unknown_routine_is_refused_and_merges_nothing) {
  char log[64];
  snprintf(log, sizeof log, "/tmp/uvwool-do-%d.err", (int)getpid());
  dh_stderr_path = log;
  dh_open("pipe", NULL);
  dh_stderr_path = NULL;
  uvw_context_t *ctx = dh_enter("kept");
  dh_reply_t r = {0};
  cr_assert_eq(uvw_conn_dispatch(conn, "no_such_routine", NULL, 0, NULL, dh_record, &r, NULL), 0);
  dh_run_until(&loop, &r.calls, 1, 30000);
  cr_assert_eq(r.status, UVW_ENACK);
  cr_assert_eq(uvw_error_kind(r.error), UVW_KIND_LOOKUP_ERROR);
  cr_assert_eq(uvw_error_code(r.error), UVW_ENOROUTINE);
  cr_assert_str_eq(uvw_error_field(r.error, "routine"), "no_such_routine");
  cr_assert_str_eq(r.request_id, "kept");
  dh_leave(ctx);
  dh_reply_clear(&r);
  dh_close();
  /* The Next that rode with the refused Task is expected, not a peer error. */
  char text[4096] = "";
  FILE *f = fopen(log, "r");
  cr_assert_not_null(f);
  text[fread(text, 1, sizeof text - 1, f)] = '\0';
  fclose(f);
  remove(log);
  cr_assert_null(strstr(text, "peer error"), "worker log: %s", text);
}

Test(oneshot, the_dispatch_timeout_travels_with_the_dispatch) {
  dh_open("pipe", NULL);
  dh_reply_t r1 = {0}, r2 = {0}, r3 = {0};
  uvw_dispatch_opts_t opts = {.dispatch_timeout_ms = 1234};
  cr_assert_eq(uvw_conn_dispatch(conn, "timeout_seen", NULL, 0, &opts, dh_record, &r1, NULL), 0);
  cr_assert_eq(uvw_conn_dispatch(conn, "timeout_seen", NULL, 0, NULL, dh_record, &r2, NULL), 0);
  dh_run_until(&loop, &r2.calls, 1, 30000);
  uvw_conn_set_dispatch_timeout(conn, 777);
  cr_assert_eq(uvw_conn_dispatch(conn, "timeout_seen", NULL, 0, NULL, dh_record, &r3, NULL), 0);
  dh_run_until(&loop, &r3.calls, 1, 30000);
  cr_assert_eq(r1.ivalue, 1234, "the per-dispatch override");
  cr_assert_eq(r2.ivalue, 5000, "the connection's default");
  cr_assert_eq(r3.ivalue, 777, "the connection's setting");
  dh_close();
}

Test(oneshot, the_dispatch_timeout_bounds_the_handshake_not_the_execution) {
  dh_open("pipe", NULL);
  /* Warm the worker up first: under valgrind its first Ack alone can take
   * longer than the bound below. */
  dh_reply_t warm = {0};
  uvw_value_t *one = uvw_value_int(1);
  cr_assert_eq(uvw_conn_dispatch(conn, "sleep", &one, 1, NULL, dh_record, &warm, NULL), 0);
  uvw_value_unref(one);
  dh_run_until(&loop, &warm.calls, 1, 30000);
  cr_assert_eq(warm.status, 0);
  uvw_context_t *ctx = dh_enter("slow");
  dh_reply_t r = {0};
  uvw_dispatch_opts_t opts = {.dispatch_timeout_ms = 200};
  uvw_value_t *ms = uvw_value_int(800);
  cr_assert_eq(uvw_conn_dispatch(conn, "sleep", &ms, 1, &opts, dh_record, &r, NULL), 0);
  uvw_value_unref(ms);
  dh_run_until(&loop, &r.calls, 1, 30000);
  cr_assert_eq(r.status, 0, "%s", r.error_msg);
  cr_assert_str_eq(r.value, "slept");
  cr_assert_str_eq(r.tenant, "set-after-sleep", "a change made in the routine's own callback comes back");
  cr_assert_str_eq(r.request_id, "slow");
  dh_leave(ctx);
  dh_reply_clear(&r);
  dh_close();
}

/* ---- a peer that accepts and never answers: the handshake times out ---- */

static uv_pipe_t silent_server, silent_peer;
static void silent_accept(uv_stream_t *s, int status) {
  cr_assert_eq(status, 0);
  uv_pipe_init(s->loop, &silent_peer, 0);
  cr_assert_eq(uv_accept(s, (uv_stream_t *)&silent_peer), 0);
}

Test(oneshot, a_worker_that_never_acknowledges_times_out) {
  dh_declare();
  uv_loop_init(&loop);
  char addr[200];
  dh_pipe_address(addr, sizeof(addr));
  uv_pipe_init(&loop, &silent_server, 0);
  cr_assert_eq(uv_pipe_bind(&silent_server, addr + 5), 0);
  cr_assert_eq(uv_listen((uv_stream_t *)&silent_server, 4, silent_accept), 0);
  cr_assert_eq(uvw_conn_open(&loop, addr, &conn), 0);
  uvw_context_t *ctx = dh_enter("waiting");
  char chain[33];
  dh_chain_id(chain);
  dh_reply_t r = {0};
  uvw_dispatch_opts_t opts = {.dispatch_timeout_ms = 100};
  uint64_t t0 = uv_now(&loop);
  cr_assert_eq(uvw_conn_dispatch(conn, "echo", NULL, 0, &opts, dh_record, &r, NULL), 0);
  dh_run_until(&loop, &r.calls, 1, 30000);
  uint64_t elapsed = uv_now(&loop) - t0;
  cr_assert_eq(r.status, UVW_ETIMEDOUT);
  cr_assert_str_eq(uvw_error_field(r.error, "timeout_ms"), "100");
  cr_assert_geq(elapsed, 100);
  cr_assert_lt(elapsed, 5000, "the per-dispatch bound, not the default, applied");
  cr_assert_str_eq(r.request_id, "waiting");
  cr_assert_str_eq(r.chain, chain);
  cr_assert_eq(uvw_conn_pending(conn), 0);
  dh_leave(ctx);
  dh_reply_clear(&r);
  uv_close((uv_handle_t *)&silent_peer, NULL);
  uv_close((uv_handle_t *)&silent_server, NULL);
  dh_finish(&loop, conn);
  remove(addr + 5);
}

/* ---- uvw_conn_set_ref: what holds the loop ----------------------------------- */

/* A watchdog that holds no loop: it fires only while something else does. */
static void unref_dog_fired(uv_timer_t *t) {
  ++*(int *)t->data;
  uv_stop(t->loop);
}

static void start_unref_dog(uv_timer_t *dog, int *fired) {
  uv_timer_init(&loop, dog);
  dog->data = fired;
  uv_timer_start(dog, unref_dog_fired, 30000, 0);
  uv_unref((uv_handle_t *)dog);
}

Test(oneshot, an_unrefd_connection_holds_the_loop_only_while_a_reply_is_awaited) {
  dh_open("pipe", NULL);
  uv_timer_t dog;
  int fired = 0;
  start_unref_dog(&dog, &fired);
  cr_assert_neq(uv_run(&loop, UV_RUN_NOWAIT), 0, "by default an open connection keeps the loop alive");
  uvw_conn_set_ref(conn, 0);
  uvw_conn_set_ref(NULL, 0); /* a no-op */

  /* Awaited: uv_run returns only once the reply came, and then at once:
   * the handshake timer, still armed for the 20 s bound already met, holds
   * nothing. */
  uvw_conn_set_dispatch_timeout(conn, 20000);
  dh_reply_t r = {0};
  uvw_value_t *ms = uvw_value_int(100);
  uv_update_time(&loop);
  uint64_t t0 = uv_now(&loop);
  cr_assert_eq(uvw_conn_dispatch(conn, "sleep", &ms, 1, NULL, dh_record, &r, NULL), 0);
  uvw_value_unref(ms);
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(fired, 0, "the loop ended on its own, not by the watchdog");
  cr_assert_eq(r.calls, 1, "the loop was held until the awaited reply came");
  cr_assert_eq(r.status, 0, "%s", r.error_msg);
  cr_assert_lt(uv_now(&loop) - t0, 10000, "the loop ended with the reply, not at the handshake deadline");

  /* Idle: the loop ends at once, the connection stays open and usable. */
  cr_assert_eq(uv_run(&loop, UV_RUN_NOWAIT), 0, "an idle unref'd connection holds nothing");
  cr_assert_not(uvw_conn_is_dead(conn));
  dh_reply_t again = {0};
  cr_assert_eq(uvw_conn_dispatch(conn, "echo", NULL, 0, NULL, dh_record, &again, NULL), 0);
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(again.calls, 1);
  cr_assert_eq(again.status, 0, "%s", again.error_msg);

  /* Ref'd again: the idle connection holds the loop once more. */
  uvw_conn_set_ref(conn, 1);
  cr_assert_neq(uv_run(&loop, UV_RUN_NOWAIT), 0);
  cr_assert_eq(fired, 0);
  uv_close((uv_handle_t *)&dog, NULL);
  dh_reply_clear(&r);
  dh_reply_clear(&again);
  dh_close();
}

Test(oneshot, an_unrefd_stream_holds_the_loop_for_each_step_awaited) {
  dh_open("pipe", NULL);
  uv_timer_t dog;
  int fired = 0;
  start_unref_dog(&dog, &fired);
  uvw_conn_set_ref(conn, 0);
  uvw_dispatch_t *s = NULL;
  cr_assert_eq(uvw_conn_dispatch_stream(conn, "counter_stream", NULL, 0, NULL, &s), 0);
  for (int step = 1; step <= 2; step++) {
    dh_reply_t r = {0};
    cr_assert_eq(uvw_dispatch_next(s, dh_record, &r), 0);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(fired, 0);
    cr_assert_eq(r.calls, 1, "step %d: the loop was held until its Result", step);
    cr_assert_eq(r.status, 0, "%s", r.error_msg);
    dh_reply_clear(&r);
  }
  /* Open, no step awaited: nothing holds the loop. */
  cr_assert_eq(uv_run(&loop, UV_RUN_NOWAIT), 0);
  uvw_dispatch_close(s);
  uv_close((uv_handle_t *)&dog, NULL);
  dh_close();
}

/* ---- the pool ------------------------------------------------------------------ */

static void pool_nap_done(uv_timer_t *t) { ++*(int *)t->data; }

Test(pool, an_unrefd_pool_holds_the_loop_only_while_replies_are_awaited) {
  char a1[200];
  dh_pipe_address(a1, sizeof(a1));
  const char *l1[] = {a1, NULL};
  dh_start(&worker, l1, NULL);
  dh_declare();
  uv_loop_init(&loop);
  const char *addrs[] = {a1};
  uvw_pool_t *pool;
  cr_assert_eq(uvw_pool_open(&loop, addrs, 1, &pool), 0);
  uv_timer_t dog;
  int fired = 0;
  start_unref_dog(&dog, &fired);
  uvw_pool_set_ref(pool, 0);
  uvw_pool_set_ref(NULL, 0); /* a no-op */
  dh_reply_t r[3] = {0};
  for (int i = 0; i < 3; i++)
    cr_assert_eq(uvw_conn_dispatch(uvw_pool_next(pool), "whoami", NULL, 0, NULL, dh_record, &r[i], NULL), 0);
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(fired, 0);
  for (int i = 0; i < 3; i++) cr_assert_eq(r[i].ivalue, worker.pid, "reply %d came before the loop ended", i);
  cr_assert_eq(uv_run(&loop, UV_RUN_NOWAIT), 0, "idle, the pool holds nothing");
  uvw_pool_set_ref(pool, 1);
  cr_assert_neq(uv_run(&loop, UV_RUN_NOWAIT), 0, "ref'd again, its connection holds the loop");
  uv_close((uv_handle_t *)&dog, NULL);
  int closed = 0;
  uvw_pool_close(pool, dh_conn_closed, &closed);
  dh_finish(&loop, NULL);
  cr_assert_eq(closed, 1);
  dh_stop(&worker);
  for (int i = 0; i < 3; i++) dh_reply_clear(&r[i]);
}

Test(pool, round_robin_over_two_workers_and_a_restarted_worker_is_reconnected) {
  dh_worker_t w2;
  char a1[200], a2[200];
  dh_pipe_address(a1, sizeof(a1));
  dh_pipe_address(a2, sizeof(a2));
  const char *l1[] = {a1, NULL}, *l2[] = {a2, NULL};
  dh_start(&worker, l1, NULL);
  dh_start(&w2, l2, NULL);
  dh_declare();
  uv_loop_init(&loop);
  const char *addrs[] = {a1, a2};
  uvw_pool_t *pool;
  cr_assert_eq(uvw_pool_open(&loop, addrs, 2, &pool), 0);
  cr_assert_eq(uvw_pool_size(pool), 2);
  dh_reply_t r[4] = {0};
  for (int i = 0; i < 4; i++)
    cr_assert_eq(uvw_conn_dispatch(uvw_pool_next(pool), "whoami", NULL, 0, NULL, dh_record, &r[i], NULL), 0);
  for (int i = 0; i < 4; i++) dh_run_until(&loop, &r[i].calls, 1, 30000);
  cr_assert_eq(r[0].ivalue, worker.pid);
  cr_assert_eq(r[1].ivalue, w2.pid);
  cr_assert_eq(r[2].ivalue, worker.pid);
  cr_assert_eq(r[3].ivalue, w2.pid);

  /* Worker 1 dies; its connection notices; a new worker 1 takes the address. */
  dh_reply_t lost = {0};
  uvw_conn_t *c1 = uvw_pool_next(pool);
  cr_assert_eq(uvw_conn_dispatch(c1, "hang", NULL, 0, NULL, dh_record, &lost, NULL), 0);
  dh_kill(&worker);
  dh_run_until(&loop, &lost.calls, 1, 30000);
  cr_assert_eq(lost.status, UVW_ECONNRESET);
  cr_assert(uvw_conn_is_dead(c1));
  remove(a1 + 5);
  dh_start(&worker, l1, NULL);
  /* The pool reconnects in the background (its first retry is due 50 ms
   * after it noticed the death): give it time, then both serve again. */
  uvw_pool_next(pool);
  int slept = 0;
  uv_timer_t nap;
  uv_timer_init(&loop, &nap);
  nap.data = &slept;
  uv_timer_start(&nap, pool_nap_done, 500, 0);
  dh_run_until(&loop, &slept, 1, 30000);
  uv_close((uv_handle_t *)&nap, NULL);
  dh_reply_t again[2] = {0};
  for (int i = 0; i < 2; i++)
    cr_assert_eq(uvw_conn_dispatch(uvw_pool_next(pool), "whoami", NULL, 0, NULL, dh_record, &again[i], NULL), 0);
  for (int i = 0; i < 2; i++) dh_run_until(&loop, &again[i].calls, 1, 30000);
  cr_assert_eq(again[0].status, 0);
  cr_assert_eq(again[1].status, 0);
  cr_assert(again[0].ivalue == worker.pid || again[1].ivalue == worker.pid, "the dead connection was replaced");
  cr_assert(again[0].ivalue == w2.pid || again[1].ivalue == w2.pid);
  int closed = 0;
  uvw_pool_close(pool, dh_conn_closed, &closed);
  dh_reply_clear(&lost);
  dh_finish(&loop, NULL);
  cr_assert_eq(closed, 1);
  dh_stop(&w2);
  dh_stop(&worker);
  cr_assert_neq(access(a1 + 5, F_OK), 0, "a worker removes its socket file when it shuts down");
}
