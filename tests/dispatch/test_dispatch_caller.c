/* The caller side under ordinary user code in its callbacks (issue 11,
 * item 4): timeout callbacks that cancel, close and retry, handshake bounds
 * at the edge of uint64_t, and callbacks never run inside the call that
 * decided them. The peer is a real unix socket that never answers. */
#include "harness.h"

static uv_pipe_t silent_server, silent_peer;
static char silent_addr[200];
static int silent_accepted;

static void silent_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  static char buf[65536];
  (void)h;
  (void)n;
  *b = uv_buf_init(buf, sizeof(buf));
}
static void silent_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)s;
  (void)n;
  (void)b; /* read and ignored: a worker that never acknowledges */
}
static void silent_accept(uv_stream_t *s, int status) {
  cr_assert_eq(status, 0);
  uv_pipe_init(s->loop, &silent_peer, 0);
  cr_assert_eq(uv_accept(s, (uv_stream_t *)&silent_peer), 0);
  uv_read_start((uv_stream_t *)&silent_peer, silent_alloc, silent_read);
  silent_accepted = 1;
}

/* A loop, a listener that never answers, and a connection to it. */
static void silent_open(void) {
  dh_declare();
  uv_loop_init(&loop);
  dh_pipe_address(silent_addr, sizeof(silent_addr));
  silent_accepted = 0;
  uv_pipe_init(&loop, &silent_server, 0);
  cr_assert_eq(uv_pipe_bind(&silent_server, silent_addr + 5), 0);
  cr_assert_eq(uv_listen((uv_stream_t *)&silent_server, 4, silent_accept), 0);
  cr_assert_eq(uvw_conn_open(&loop, silent_addr, &conn), 0);
}

static void silent_close(uvw_conn_t *c) {
  if (silent_accepted) uv_close((uv_handle_t *)&silent_peer, NULL);
  uv_close((uv_handle_t *)&silent_server, NULL);
  dh_finish(&loop, c);
  remove(silent_addr + 5);
}

/* ---- timeout callbacks that touch other dispatches --------------------------------- */

typedef struct pair_s {
  uvw_dispatch_t *d[2];
  dh_reply_t r[2];
  int cancel_rc[2];
  int close_conn;
  int closed;
} pair_t;

static pair_t pair;

/* Each callback cancels the other dispatch, or closes the connection. */
static void on_pair(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg) {
  int i = (int)(intptr_t)arg, other = 1 - i;
  dh_record(d, r, &pair.r[i]);
  if (pair.close_conn) {
    uvw_conn_close(conn, dh_conn_closed, &pair.closed);
    return;
  }
  if (pair.r[other].calls == 0) pair.cancel_rc[i] = uvw_dispatch_cancel(pair.d[other]);
}

static void two_dispatches_expiring_together(int close_conn) {
  silent_open();
  memset(&pair, 0, sizeof(pair));
  pair.close_conn = close_conn;
  uvw_context_t *ctx = dh_enter("both");
  uvw_dispatch_opts_t opts = {.dispatch_timeout_ms = 50};
  /* Made in the same loop turn with the same bound: one deadline. */
  for (int i = 0; i < 2; i++)
    cr_assert_eq(uvw_conn_dispatch(conn, "echo", NULL, 0, &opts, on_pair, (void *)(intptr_t)i, &pair.d[i]), 0);
  dh_run_until(&loop, &pair.r[1].calls, 1, 30000);
  dh_run_until(&loop, &pair.r[0].calls, 1, 30000);
  for (int i = 0; i < 2; i++) {
    cr_assert_eq(pair.r[i].calls, 1, "dispatch %d: one callback", i);
    cr_assert_eq(pair.r[i].status, UVW_ETIMEDOUT, "dispatch %d: %s", i, uvw_err_name(pair.r[i].status));
    cr_assert_str_eq(pair.r[i].request_id, "both");
  }
  dh_leave(ctx);
  for (int i = 0; i < 2; i++) dh_reply_clear(&pair.r[i]);
  if (close_conn) {
    silent_close(NULL);
    cr_assert_eq(pair.closed, 1, "the close callback ran once");
  } else {
    /* The first callback found the other one already decided. */
    cr_assert(pair.cancel_rc[0] == UVW_EINVAL || pair.cancel_rc[1] == UVW_EINVAL);
    cr_assert_eq(uvw_conn_pending(conn), 0);
    silent_close(conn);
  }
}

Test(caller, a_timeout_callback_that_cancels_a_dispatch_expiring_with_it_is_safe) {
  two_dispatches_expiring_together(0);
}

Test(caller, a_timeout_callback_that_closes_the_connection_is_safe) { two_dispatches_expiring_together(1); }

/* ---- a retry from a timeout callback gets its own deadline ------------------------------ */

static dh_reply_t first, retry, far_one;
static uint64_t retried_at, retry_done_at;

static void on_retry(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg) {
  dh_record(d, r, arg);
  retry_done_at = uv_now(&loop);
}

static void on_first(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg) {
  dh_record(d, r, arg);
  uvw_dispatch_opts_t opts = {.dispatch_timeout_ms = 200};
  retried_at = uv_now(&loop);
  cr_assert_eq(uvw_conn_dispatch(conn, "echo", NULL, 0, &opts, on_retry, &retry, NULL), 0);
}

Test(caller, a_retry_issued_from_a_timeout_callback_times_out_on_its_own_deadline) {
  silent_open();
  uvw_context_t *ctx = dh_enter("retry");
  uvw_dispatch_opts_t far = {.dispatch_timeout_ms = 4000}, near = {.dispatch_timeout_ms = 100};
  cr_assert_eq(uvw_conn_dispatch(conn, "echo", NULL, 0, &far, dh_record, &far_one, NULL), 0);
  cr_assert_eq(uvw_conn_dispatch(conn, "echo", NULL, 0, &near, on_first, &first, NULL), 0);
  dh_run_until(&loop, &retry.calls, 1, 30000);
  cr_assert_eq(first.status, UVW_ETIMEDOUT);
  cr_assert_eq(retry.status, UVW_ETIMEDOUT);
  uint64_t waited = retry_done_at - retried_at;
  cr_assert_geq(waited, 200);
  cr_assert_lt(waited, 3000, "the retry waited %llu ms: the other dispatch's deadline, not its own",
               (unsigned long long)waited);
  cr_assert_eq(far_one.calls, 0);
  dh_leave(ctx);
  silent_close(conn);
  cr_assert_eq(far_one.status, UVW_ECANCELED);
  dh_reply_clear(&first);
  dh_reply_clear(&retry);
  dh_reply_clear(&far_one);
}

/* ---- a bound near UINT64_MAX ----------------------------------------------------------- */

Test(caller, a_handshake_bound_near_uint64_max_saturates_and_leaves_other_deadlines_alone) {
  silent_open();
  uvw_context_t *ctx = dh_enter("edge");
  dh_reply_t huge = {0}, small = {0};
  uvw_dispatch_opts_t h = {.dispatch_timeout_ms = UINT64_MAX - 1}, s = {.dispatch_timeout_ms = 100};
  cr_assert_eq(uvw_conn_dispatch(conn, "echo", NULL, 0, &h, dh_record, &huge, NULL), 0);
  cr_assert_eq(uvw_conn_dispatch(conn, "echo", NULL, 0, &s, dh_record, &small, NULL), 0);
  dh_run_until(&loop, &small.calls, 1, 10000);
  cr_assert_eq(small.status, UVW_ETIMEDOUT);
  cr_assert_eq(huge.calls, 0, "a bound of UINT64_MAX - 1 ms is not an expired one");
  dh_leave(ctx);
  silent_close(conn);
  cr_assert_eq(huge.status, UVW_ECANCELED);
  dh_reply_clear(&huge);
  dh_reply_clear(&small);
}

Test(caller, the_connection_default_bound_saturates_too) {
  silent_open();
  uvw_conn_set_dispatch_timeout(conn, UINT64_MAX);
  uvw_context_t *ctx = dh_enter("edge");
  dh_reply_t huge = {0}, small = {0};
  uvw_dispatch_opts_t s = {.dispatch_timeout_ms = 100};
  cr_assert_eq(uvw_conn_dispatch(conn, "echo", NULL, 0, NULL, dh_record, &huge, NULL), 0);
  cr_assert_eq(uvw_conn_dispatch(conn, "echo", NULL, 0, &s, dh_record, &small, NULL), 0);
  dh_run_until(&loop, &small.calls, 1, 10000);
  cr_assert_eq(small.status, UVW_ETIMEDOUT);
  cr_assert_eq(huge.calls, 0);
  dh_leave(ctx);
  silent_close(conn);
  dh_reply_clear(&huge);
  dh_reply_clear(&small);
}

/* ---- callbacks never run inside the call that decides them ------------------------------- */

static int inside_call;
static int ran_inside;
static void note_inside(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg) {
  if (inside_call) ran_inside++;
  dh_record(d, r, arg);
}

Test(caller, cancel_close_and_connection_close_never_run_a_callback_before_they_return) {
  silent_open();
  uvw_context_t *ctx = dh_enter("deferred");
  dh_reply_t a = {0}, b = {0}, c = {0};
  uvw_dispatch_t *da, *ds;
  cr_assert_eq(uvw_conn_dispatch(conn, "echo", NULL, 0, NULL, note_inside, &a, &da), 0);
  cr_assert_eq(uvw_conn_dispatch_stream(conn, "counter_stream", NULL, 0, NULL, &ds), 0);
  cr_assert_eq(uvw_dispatch_next(ds, note_inside, &b), 0);
  cr_assert_eq(uvw_conn_dispatch(conn, "echo", NULL, 0, NULL, note_inside, &c, NULL), 0);
  inside_call = 1;
  cr_assert_eq(uvw_dispatch_cancel(da), 0);
  uvw_dispatch_close(ds);
  int closed = 0;
  uvw_conn_close(conn, dh_conn_closed, &closed);
  inside_call = 0;
  cr_assert_eq(ran_inside, 0, "a callback ran inside the call that decided it");
  cr_assert_eq(a.calls + b.calls + c.calls, 0);
  dh_run_until(&loop, &closed, 1, 30000);
  cr_assert_eq(a.calls, 1);
  cr_assert_eq(b.calls, 1);
  cr_assert_eq(c.calls, 1);
  cr_assert_eq(a.status, UVW_ECANCELED);
  cr_assert_eq(b.status, UVW_ECANCELED);
  cr_assert_eq(c.status, UVW_ECANCELED);
  cr_assert_str_eq(c.request_id, "deferred", "the callback ran in its capture");
  cr_assert_eq(closed, 1);
  dh_leave(ctx);
  dh_reply_clear(&a);
  dh_reply_clear(&b);
  dh_reply_clear(&c);
  silent_close(NULL);
}

/* ---- the pool skips a dead member (issue 11, item 5) ------------------------------------- */

static void nap_done(uv_timer_t *t) { ++*(int *)t->data; }

static void nap(int ms) {
  int slept = 0;
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  t.data = &slept;
  uv_timer_start(&t, nap_done, (uint64_t)ms, 0);
  dh_run_until(&loop, &slept, 1, 30000);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
}

Test(pool, with_one_of_two_workers_killed_every_dispatch_goes_to_the_live_one) {
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
  dh_reply_t warm[2] = {0};
  for (int i = 0; i < 2; i++)
    cr_assert_eq(uvw_conn_dispatch(uvw_pool_next(pool), "whoami", NULL, 0, NULL, dh_record, &warm[i], NULL), 0);
  for (int i = 0; i < 2; i++) dh_run_until(&loop, &warm[i].calls, 1, 30000);
  /* Both members are up, so the next turn is the first member (worker 1):
   * a dispatch left hanging there tells when its death is known. */
  dh_reply_t lost = {0};
  cr_assert_eq(uvw_conn_dispatch(uvw_pool_next(pool), "hang", NULL, 0, NULL, dh_record, &lost, NULL), 0);
  nap(50);
  dh_kill(&worker);
  dh_run_until(&loop, &lost.calls, 1, 30000);
  cr_assert_eq(lost.status, UVW_ECONNRESET);
  dh_reply_clear(&lost);
  enum { N = 20 };
  dh_reply_t r[N] = {{0}};
  for (int i = 0; i < N; i++) {
    uvw_conn_t *c = uvw_pool_next(pool);
    cr_assert_not_null(c);
    cr_assert_eq(uvw_conn_dispatch(c, "whoami", NULL, 0, NULL, dh_record, &r[i], NULL), 0);
  }
  for (int i = 0; i < N; i++) dh_run_until(&loop, &r[i].calls, 1, 30000);
  int ok = 0;
  for (int i = 0; i < N; i++) ok += r[i].status == 0 && r[i].ivalue == w2.pid;
  cr_assert_eq(ok, N, "only %d of %d dispatches reached the live worker", ok, N);
  int closed = 0;
  uvw_pool_close(pool, dh_conn_closed, &closed);
  for (int i = 0; i < N; i++) dh_reply_clear(&r[i]);
  for (int i = 0; i < 2; i++) dh_reply_clear(&warm[i]);
  dh_finish(&loop, NULL);
  cr_assert_eq(closed, 1);
  dh_stop(&w2);
  remove(a1 + 5);
}

Test(pool, dispatches_made_on_a_member_that_never_came_up_go_to_a_live_one) {
  dh_worker_t killed;
  char a1[200], a2[200], a3[200];
  dh_pipe_address(a1, sizeof(a1)); /* a worker killed: its socket file stays, nothing answers */
  dh_pipe_address(a2, sizeof(a2)); /* never existed */
  dh_pipe_address(a3, sizeof(a3)); /* the live worker */
  const char *l1[] = {a1, NULL}, *l3[] = {a3, NULL};
  dh_start(&killed, l1, NULL);
  dh_kill(&killed);
  dh_start(&worker, l3, NULL);
  dh_declare();
  uv_loop_init(&loop);
  const char *addrs[] = {a1, a2, a3};
  uvw_pool_t *pool;
  cr_assert_eq(uvw_pool_open(&loop, addrs, 3, &pool), 0);
  /* Every member is still connecting: the pool hands them out in turn. */
  uvw_context_t *ctx = dh_enter("moved");
  enum { N = 21 };
  dh_reply_t r[N] = {{0}}, step = {0};
  uvw_dispatch_opts_t opts = {.dispatch_timeout_ms = 20000};
  for (int i = 0; i < N; i++)
    cr_assert_eq(uvw_conn_dispatch(uvw_pool_next(pool), "read_and_mutate", NULL, 0, &opts, dh_record, &r[i], NULL), 0);
  uvw_dispatch_t *s;
  cr_assert_eq(uvw_conn_dispatch_stream(uvw_pool_next(pool), "counter_stream", NULL, 0, NULL, &s), 0);
  cr_assert_eq(uvw_dispatch_next(s, dh_record, &step), 0);
  for (int i = 0; i < N; i++) dh_run_until(&loop, &r[i].calls, 1, 30000);
  dh_run_until(&loop, &step.calls, 1, 30000);
  int ok = 0;
  for (int i = 0; i < N; i++) ok += r[i].status == 0 && strcmp(r[i].value, "saw:moved") == 0 && strcmp(r[i].request_id, "moved+worker") == 0;
  cr_assert_eq(ok, N, "only %d of %d dispatches succeeded (first failure: %s)", ok, N, r[0].error_msg);
  cr_assert_eq(step.status, 0, "%s", step.error_msg);
  cr_assert_str_eq(step.value, "1:moved:stream-tenant", "the stream moved with its captured context");
  uvw_dispatch_close(s);
  dh_leave(ctx);
  for (int i = 0; i < N; i++) dh_reply_clear(&r[i]);
  dh_reply_clear(&step);
  int closed = 0;
  uvw_pool_close(pool, dh_conn_closed, &closed);
  dh_finish(&loop, NULL);
  cr_assert_eq(closed, 1);
  dh_stop(&worker);
  remove(a1 + 5);
}

Test(pool, a_dispatch_fails_once_no_member_is_live) {
  char a1[200], a2[200];
  dh_pipe_address(a1, sizeof(a1));
  dh_pipe_address(a2, sizeof(a2));
  dh_declare();
  uv_loop_init(&loop);
  const char *addrs[] = {a1, a2};
  uvw_pool_t *pool;
  cr_assert_eq(uvw_pool_open(&loop, addrs, 2, &pool), 0);
  dh_reply_t r[4] = {{0}};
  for (int i = 0; i < 4; i++)
    cr_assert_eq(uvw_conn_dispatch(uvw_pool_next(pool), "whoami", NULL, 0, NULL, dh_record, &r[i], NULL), 0);
  for (int i = 0; i < 4; i++) dh_run_until(&loop, &r[i].calls, 1, 30000);
  for (int i = 0; i < 4; i++) {
    cr_assert_eq(r[i].status, UVW_ECONNRESET, "got %s: %s", uvw_err_name(r[i].status), r[i].error_msg);
    cr_assert_eq(r[i].calls, 1);
    dh_reply_clear(&r[i]);
  }
  int closed = 0;
  uvw_pool_close(pool, dh_conn_closed, &closed);
  dh_finish(&loop, NULL);
  cr_assert_eq(closed, 1);
}

/* ---- one undecodable argument fails one dispatch ---------------------------------------- */

static int caller_codec_encode(const uvw_value_t *value, void *arg, uvw_value_t **out) {
  (void)value;
  (void)arg;
  *out = uvw_value_bytes("c", 1);
  return 0;
}
static const uvw_opaque_ops_t caller_codec = {"t.caller_only_codec", NULL};

Test(caller, an_argument_the_worker_cannot_decode_fails_that_dispatch_alone) {
  dh_open("pipe", NULL);
  cr_assert_eq(uvw_codec_register("t.caller_only_codec", caller_codec_encode, NULL, NULL), 0);
  uvw_context_t *ctx = dh_enter("siblings");
  enum { N = 20 };
  dh_reply_t sib[N] = {{0}}, bad = {0};
  uvw_value_t *ms = uvw_value_int(100);
  for (int i = 0; i < N; i++) cr_assert_eq(uvw_conn_dispatch(conn, "sleep", &ms, 1, NULL, dh_record, &sib[i], NULL), 0);
  uvw_value_unref(ms);
  static int payload;
  uvw_value_t *v = uvw_value_opaque(&payload, &caller_codec);
  cr_assert_eq(uvw_conn_dispatch(conn, "echo", &v, 1, NULL, dh_record, &bad, NULL), 0);
  uvw_value_unref(v);
  dh_run_until(&loop, &bad.calls, 1, 30000);
  for (int i = 0; i < N; i++) dh_run_until(&loop, &sib[i].calls, 1, 30000);
  cr_assert_eq(bad.status, UVW_ENACK, "got %s: %s", uvw_err_name(bad.status), bad.error_msg);
  cr_assert_not_null(strstr(bad.error_msg, "t.caller_only_codec"), "%s", bad.error_msg);
  int ok = 0;
  for (int i = 0; i < N; i++) ok += sib[i].status == 0 && strcmp(sib[i].value, "slept") == 0;
  cr_assert_eq(ok, N, "only %d of %d sibling dispatches succeeded", ok, N);
  cr_assert_not(uvw_conn_is_dead(conn));
  dh_leave(ctx);
  for (int i = 0; i < N; i++) dh_reply_clear(&sib[i]);
  dh_reply_clear(&bad);
  dh_close();
}

Test(caller, a_send_the_worker_cannot_decode_fails_that_stream_alone) {
  dh_open("pipe", NULL);
  cr_assert_eq(uvw_codec_register("t.caller_only_codec", caller_codec_encode, NULL, NULL), 0);
  uvw_context_t *ctx = dh_enter("siblings");
  enum { N = 20 };
  dh_reply_t sib[N] = {{0}}, first = {0}, bad = {0}, other_step = {0};
  uvw_value_t *ms = uvw_value_int(100);
  for (int i = 0; i < N; i++) cr_assert_eq(uvw_conn_dispatch(conn, "sleep", &ms, 1, NULL, dh_record, &sib[i], NULL), 0);
  uvw_value_unref(ms);
  uvw_dispatch_t *s, *other;
  cr_assert_eq(uvw_conn_dispatch_stream(conn, "counter_stream", NULL, 0, NULL, &s), 0);
  cr_assert_eq(uvw_conn_dispatch_stream(conn, "counter_stream", NULL, 0, NULL, &other), 0);
  cr_assert_eq(uvw_dispatch_next(s, dh_record, &first), 0);
  dh_run_until(&loop, &first.calls, 1, 30000);
  cr_assert_eq(first.status, 0, "%s", first.error_msg);
  static int payload;
  uvw_value_t *v = uvw_value_opaque(&payload, &caller_codec);
  cr_assert_eq(uvw_dispatch_send(s, v, dh_record, &bad), 0);
  uvw_value_unref(v);
  dh_run_until(&loop, &bad.calls, 1, 30000);
  cr_assert_eq(bad.status, UVW_EREMOTE, "got %s: %s", uvw_err_name(bad.status), bad.error_msg);
  cr_assert_eq(uvw_error_code(bad.error), UVW_ESERIALIZE, "%s", bad.error_msg);
  cr_assert_str_eq(uvw_error_field(bad.error, "part"), "value");
  cr_assert_str_eq(uvw_error_field(bad.error, "index"), "0");
  cr_assert_not_null(strstr(uvw_error_field(bad.error, "reason"), "t.caller_only_codec"), "%s", bad.error_msg);
  cr_assert(bad.done, "an Exception ends the stream");
  cr_assert_str_eq(bad.request_id, "siblings");
  cr_assert_neq(uvw_dispatch_next(s, dh_record, &bad), 0, "the failed stream takes no more steps");
  /* The connection, the other stream and the siblings go on. */
  cr_assert_eq(uvw_dispatch_next(other, dh_record, &other_step), 0);
  dh_run_until(&loop, &other_step.calls, 1, 30000);
  cr_assert_eq(other_step.status, 0, "%s", other_step.error_msg);
  cr_assert_str_eq(other_step.value, "1:siblings:stream-tenant");
  for (int i = 0; i < N; i++) dh_run_until(&loop, &sib[i].calls, 1, 30000);
  int ok = 0;
  for (int i = 0; i < N; i++) ok += sib[i].status == 0 && strcmp(sib[i].value, "slept") == 0;
  cr_assert_eq(ok, N, "only %d of %d sibling dispatches succeeded", ok, N);
  cr_assert_not(uvw_conn_is_dead(conn));
  cr_assert_eq(bad.calls, 1, "the routine's answer to the THROW it got was dropped");
  uvw_dispatch_close(s);
  uvw_dispatch_close(other);
  dh_leave(ctx);
  for (int i = 0; i < N; i++) dh_reply_clear(&sib[i]);
  dh_reply_clear(&first);
  dh_reply_clear(&bad);
  dh_reply_clear(&other_step);
  dh_close();
}

/* ---- an Exception too big to encode still answers ------------------------------------------ */

Test(caller, a_strict_error_too_big_for_the_wire_is_replaced_by_a_small_one) {
  dh_open("pipe", "--strict");
  uvw_context_t *ctx = dh_enter("flood");
  dh_reply_t r = {0};
  uvw_value_t *args[2] = {uvw_value_int(512), uvw_value_int(64)};
  cr_assert_eq(uvw_conn_dispatch(conn, "strict_flood", args, 2, NULL, dh_record, &r, NULL), 0);
  uvw_value_unref(args[0]);
  uvw_value_unref(args[1]);
  dh_run_until(&loop, &r.calls, 1, 30000);
  cr_assert_eq(r.status, UVW_EREMOTE, "got %s: %s", uvw_err_name(r.status), r.error_msg);
  cr_assert_eq(uvw_error_code(r.error), UVW_ECHAINSERIALIZE, "%s", r.error_msg);
  cr_assert_not_null(uvw_error_field(r.error, "replaced_because"), "%s", r.error_msg);
  cr_assert_str_eq(r.request_id, "flood", "nothing was merged");
  dh_reply_clear(&r);
  dh_leave(ctx);
  dh_close();
}

Test(caller, a_result_the_caller_cannot_decode_fails_that_dispatch_alone) {
  dh_open("pipe", NULL);
  uvw_context_t *ctx = dh_enter("siblings");
  enum { N = 20 };
  dh_reply_t sib[N] = {{0}}, bad = {0};
  uvw_value_t *ms = uvw_value_int(100);
  for (int i = 0; i < N; i++) cr_assert_eq(uvw_conn_dispatch(conn, "sleep", &ms, 1, NULL, dh_record, &sib[i], NULL), 0);
  uvw_value_unref(ms);
  cr_assert_eq(uvw_conn_dispatch(conn, "return_worker_codec", NULL, 0, NULL, dh_record, &bad, NULL), 0);
  dh_run_until(&loop, &bad.calls, 1, 30000);
  for (int i = 0; i < N; i++) dh_run_until(&loop, &sib[i].calls, 1, 30000);
  cr_assert_eq(bad.status, UVW_ESERIALIZE, "got %s: %s", uvw_err_name(bad.status), bad.error_msg);
  cr_assert_str_eq(bad.request_id, "siblings", "nothing was merged");
  int ok = 0;
  for (int i = 0; i < N; i++) ok += sib[i].status == 0 && strcmp(sib[i].value, "slept") == 0;
  cr_assert_eq(ok, N, "only %d of %d sibling dispatches succeeded", ok, N);
  cr_assert_not(uvw_conn_is_dead(conn));
  dh_leave(ctx);
  for (int i = 0; i < N; i++) dh_reply_clear(&sib[i]);
  dh_reply_clear(&bad);
  dh_close();
}
