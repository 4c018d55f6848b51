/* Faults across the process boundary (docs/testing.md row 32 and the bad
 * input list): a worker killed mid-stream, cancellation, a connection
 * dropped mid-frame, malformed frames from a hostile peer on either side,
 * and 1,000 concurrent dispatches on one connection. */
#include "harness.h"

/* ---- a worker killed mid-stream ------------------------------------------------ */

static dh_reply_t step1, step2;
static char chain_at_step2[33];

static void after_step1(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg) {
  dh_record(d, r, arg);
  dh_set_str(dh_request_id, "mid-stream");
  dh_chain_id(chain_at_step2);
  cr_assert_eq(uvw_dispatch_next(d, dh_record, &step2), 0);
}

static void kill_worker(uv_timer_t *t) {
  (void)t;
  dh_kill(&worker);
}

Test(faults, a_worker_killed_mid_stream_fails_the_step_and_merges_nothing) {
  dh_open("pipe", NULL);
  uvw_context_t *ctx = dh_enter("start");
  uvw_dispatch_t *d;
  cr_assert_eq(uvw_conn_dispatch_stream(conn, "hang_after_one", NULL, 0, NULL, &d), 0);
  cr_assert_eq(uvw_dispatch_next(d, after_step1, &step1), 0);
  dh_run_until(&loop, &step1.calls, 1, 30000);
  cr_assert_eq(step1.status, 0);
  cr_assert_str_eq(step1.tenant, "from-step-1");
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, kill_worker, 50, 0); /* step 2 is in the worker, unanswered */
  dh_run_until(&loop, &step2.calls, 1, 30000);
  cr_assert_eq(step2.status, UVW_ECONNRESET);
  cr_assert(step2.done);
  cr_assert_str_eq(step2.request_id, "mid-stream", "the step's context is as it was sent");
  cr_assert_str_eq(step2.tenant, "from-step-1");
  cr_assert_str_eq(step2.chain, chain_at_step2);
  cr_assert(uvw_conn_is_dead(conn));
  cr_assert_eq(uvw_dispatch_next(d, dh_record, &step2), UVW_ECONNRESET);
  dh_reply_t r = {0};
  cr_assert_eq(uvw_conn_dispatch(conn, "echo", NULL, 0, NULL, dh_record, &r, NULL), UVW_ECONNRESET);
  cr_assert_eq(r.calls, 0);
  cr_assert_str_eq(dh_str(dh_request_id), "start");
  uvw_dispatch_close(d);
  uv_close((uv_handle_t *)&t, NULL);
  dh_leave(ctx);
  dh_reply_clear(&step1);
  dh_reply_clear(&step2);
  dh_finish(&loop, conn);
}

/* ---- cancellation ------------------------------------------------------------------ */

Test(faults, a_cancelled_dispatch_merges_nothing_and_its_late_answer_is_dropped) {
  dh_open("pipe", NULL);
  uvw_context_t *ctx = dh_enter("cancel-me");
  char chain[33];
  dh_chain_id(chain);
  dh_reply_t hung = {0}, slow = {0}, slower = {0};
  uvw_dispatch_t *d;
  cr_assert_eq(uvw_conn_dispatch(conn, "hang", NULL, 0, NULL, dh_record, &hung, &d), 0);
  cr_assert_eq(uvw_conn_pending(conn), 1);
  cr_assert_eq(uvw_dispatch_cancel(d), 0);
  cr_assert_eq(hung.calls, 0, "the callback ran inside uvw_dispatch_cancel");
  cr_assert_eq(uvw_conn_pending(conn), 0, "the reply is decided at once");
  cr_assert_eq(uvw_dispatch_cancel(d), UVW_EINVAL, "nothing is pending any more");
  dh_run_until(&loop, &hung.calls, 1, 30000);
  cr_assert_eq(hung.calls, 1);
  cr_assert_eq(hung.status, UVW_ECANCELED);
  cr_assert_str_eq(hung.request_id, "cancel-me");
  cr_assert_str_eq(hung.chain, chain);
  cr_assert_eq(uvw_conn_pending(conn), 0);

  /* Cancel one that will answer after 100 ms; wait for one answering
   * after 300 ms on the same connection: the first answer came and was
   * dropped in between. */
  uvw_value_t *ms = uvw_value_int(100);
  cr_assert_eq(uvw_conn_dispatch(conn, "sleep", &ms, 1, NULL, dh_record, &slow, &d), 0);
  uvw_value_unref(ms);
  cr_assert_eq(uvw_dispatch_cancel(d), 0);
  ms = uvw_value_int(300);
  cr_assert_eq(uvw_conn_dispatch(conn, "sleep", &ms, 1, NULL, dh_record, &slower, NULL), 0);
  uvw_value_unref(ms);
  dh_run_until(&loop, &slower.calls, 1, 30000);
  cr_assert_eq(slower.status, 0);
  cr_assert_eq(slow.calls, 1, "no second callback for the cancelled dispatch");
  dh_reply_t told = {0};
  cr_assert_eq(uvw_conn_dispatch(conn, "cancelled_count", NULL, 0, NULL, dh_record, &told, NULL), 0);
  dh_run_until(&loop, &told.calls, 1, 30000);
  cr_assert_eq(told.ivalue, 1, "the running routine was told of its cancellation");
  cr_assert_eq(slow.status, UVW_ECANCELED);
  cr_assert_str_eq(slow.tenant, "-", "its routine's change was not merged");
  dh_leave(ctx);
  dh_reply_clear(&hung);
  dh_reply_clear(&slow);
  dh_reply_clear(&slower);
  dh_finish(&loop, conn);
  dh_stop(&worker);
}

/* ---- hostile or broken workers (an in-process fake) --------------------------------- */

static uv_pipe_t fake_server, fake_peer;
static uv_write_t fake_write;
static const char *fake_bytes;
static size_t fake_len;

static void fake_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  static char buf[4096];
  (void)h;
  (void)n;
  *b = uv_buf_init(buf, sizeof(buf));
}

static void fake_written(uv_write_t *w, int status) {
  (void)status;
  uv_close((uv_handle_t *)w->handle, NULL); /* and hang up */
}

/* On the first bytes from the caller, answer with fake_bytes and close. */
static void fake_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n <= 0) return;
  uv_read_stop(s);
  uv_buf_t out = uv_buf_init((char *)fake_bytes, (unsigned)fake_len);
  cr_assert_eq(uv_write(&fake_write, s, &out, 1, fake_written), 0);
}

static void fake_accept(uv_stream_t *s, int status) {
  cr_assert_eq(status, 0);
  uv_pipe_init(s->loop, &fake_peer, 0);
  cr_assert_eq(uv_accept(s, (uv_stream_t *)&fake_peer), 0);
  uv_read_start((uv_stream_t *)&fake_peer, fake_alloc, fake_read);
}

static void against_fake_worker(const char *bytes, size_t len, int want_status, const char *want_in_message) {
  dh_declare();
  uv_loop_init(&loop);
  char addr[200];
  dh_pipe_address(addr, sizeof(addr));
  fake_bytes = bytes;
  fake_len = len;
  uv_pipe_init(&loop, &fake_server, 0);
  cr_assert_eq(uv_pipe_bind(&fake_server, addr + 5), 0);
  cr_assert_eq(uv_listen((uv_stream_t *)&fake_server, 4, fake_accept), 0);
  cr_assert_eq(uvw_conn_open(&loop, addr, &conn), 0);
  uvw_context_t *ctx = dh_enter("untouched");
  char chain[33];
  dh_chain_id(chain);
  dh_reply_t r = {0};
  cr_assert_eq(uvw_conn_dispatch(conn, "echo", NULL, 0, NULL, dh_record, &r, NULL), 0);
  dh_run_until(&loop, &r.calls, 1, 30000);
  cr_assert_eq(r.status, want_status, "got %s: %s", uvw_err_name(r.status), r.error_msg);
  cr_assert(strstr(r.error_msg, want_in_message), "message: %s", r.error_msg);
  cr_assert_str_eq(r.request_id, "untouched");
  cr_assert_str_eq(r.chain, chain);
  cr_assert(uvw_conn_is_dead(conn));
  cr_assert_str_eq(dh_str(dh_request_id), "untouched");
  dh_leave(ctx);
  dh_reply_clear(&r);
  uv_close((uv_handle_t *)&fake_server, NULL);
  dh_finish(&loop, conn);
  remove(addr + 5);
}

Test(faults, a_connection_dropped_mid_frame_fails_the_dispatch) {
  /* announces 50 bytes, sends 10, hangs up */
  static const char partial[] = "\x00\x00\x00\x32" "0123456789";
  against_fake_worker(partial, sizeof(partial) - 1, UVW_ECONNRESET, "middle of a frame");
}

Test(faults, a_malformed_response_fails_the_dispatch_and_the_connection) {
  static const char garbage[] = "\x00\x00\x00\x04\xff\xff\xff\xff";
  against_fake_worker(garbage, sizeof(garbage) - 1, UVW_EMALFORMED, "");
}

Test(faults, an_oversized_frame_announcement_is_refused_before_buffering) {
  static const char huge[] = "\x7f\xff\xff\xff";
  against_fake_worker(huge, sizeof(huge) - 1, UVW_ETOOBIG, "limit");
}

/* ---- hostile callers against a real worker (blocking raw sockets) --------------------- */

static void expect_hang_up(int fd) {
  char c;
  cr_assert_eq(dh_raw_read(fd, &c, 1), 0, "the worker should have dropped this peer");
  close(fd);
}

static void echo_works(void) {
  dh_reply_t r = {0};
  uvw_value_t *v = uvw_value_cstring("still serving");
  cr_assert_eq(uvw_conn_dispatch(conn, "echo", &v, 1, NULL, dh_record, &r, NULL), 0);
  uvw_value_unref(v);
  dh_run_until(&loop, &r.calls, 1, 30000);
  cr_assert_eq(r.status, 0);
  cr_assert_str_eq(r.value, "still serving");
  dh_reply_clear(&r);
}

Test(faults, the_worker_drops_hostile_peers_and_keeps_serving_the_others) {
  dh_open("pipe", NULL);
  echo_works();
  int fd = dh_raw_connect(worker.addr[0]);
  dh_raw_send(fd, "\x00\x00\x00\x07garbage", 11);
  expect_hang_up(fd);
  fd = dh_raw_connect(worker.addr[0]);
  dh_raw_send(fd, "\x7f\xff\xff\xff", 4); /* a 2 GiB frame: refused unread */
  expect_hang_up(fd);
  fd = dh_raw_connect(worker.addr[0]);
  dh_raw_send(fd, "\x00\x00\x01\x00half", 8); /* then hangs up mid-frame */
  close(fd);
  echo_works();
  dh_finish(&loop, conn);
  dh_stop(&worker); /* still alive, and it shuts down cleanly */
}

Test(faults, a_request_for_an_unknown_dispatch_gets_a_protocol_error) {
  dh_open("pipe", NULL);
  int fd = dh_raw_connect(worker.addr[0]);
  uvw_frame_t *next = uvw_frame_new(UVW_FRAME_NEXT, 99);
  dh_raw_send_frame(fd, next);
  uvw_frame_free(next);
  uvw_frame_t *f = dh_raw_recv_frame(fd);
  cr_assert_eq(uvw_frame_kind(f), UVW_FRAME_EXCEPTION);
  cr_assert_eq(uvw_frame_dispatch_id(f), 99);
  cr_assert_eq(uvw_error_code(uvw_frame_error(f)), UVW_EPROTO);
  uvw_frame_free(f);
  /* The connection still works for well-formed dispatches. */
  uvw_frame_t *task = uvw_frame_new(UVW_FRAME_TASK, 1);
  uvw_frame_set_routine(task, "timeout_seen");
  dh_raw_send_frame(fd, task);
  uvw_frame_free(task);
  next = uvw_frame_new(UVW_FRAME_NEXT, 1);
  dh_raw_send_frame(fd, next);
  uvw_frame_free(next);
  f = dh_raw_recv_frame(fd);
  cr_assert_eq(uvw_frame_kind(f), UVW_FRAME_ACK);
  uvw_frame_free(f);
  f = dh_raw_recv_frame(fd);
  cr_assert_eq(uvw_frame_kind(f), UVW_FRAME_RESULT);
  cr_assert_eq(uvw_value_as_int(uvw_frame_value(f)), -1, "no timeout travelled with this Task");
  uvw_frame_free(f);
  close(fd);
  dh_finish(&loop, conn);
  dh_stop(&worker);
}

/* A peer that breaks the dispatch protocol in every way a well-formed frame
 * can: each violation is answered on that dispatch (Nack or an EPROTO
 * Exception), the connection stays usable, nothing leaks in the worker. */
static void raw_request(int fd, uvw_frame_kind_t kind, uint64_t id, const char *routine) {
  uvw_frame_t *f = uvw_frame_new(kind, id);
  if (routine) uvw_frame_set_routine(f, routine);
  if (kind == UVW_FRAME_SEND) {
    uvw_value_t *v = uvw_value_int(3);
    uvw_frame_set_value(f, v);
    uvw_value_unref(v);
  }
  if (kind == UVW_FRAME_THROW) {
    uvw_error_t *e = uvw_error_new("StopIt", 0, "stop");
    uvw_frame_set_error(f, e);
    uvw_error_unref(e);
  }
  dh_raw_send_frame(fd, f);
  uvw_frame_free(f);
}

static void expect_frame(int fd, uvw_frame_kind_t kind, uint64_t id, int code) {
  uvw_frame_t *f = dh_raw_recv_frame(fd);
  cr_assert_eq(uvw_frame_kind(f), kind, "dispatch %llu: got frame kind %d, want %d", (unsigned long long)id,
               uvw_frame_kind(f), kind);
  cr_assert_eq(uvw_frame_dispatch_id(f), id);
  if (code) cr_assert_eq(uvw_error_code(uvw_frame_error(f)), code, "%s", uvw_error_message(uvw_frame_error(f)));
  uvw_frame_free(f);
}

Test(faults, protocol_violations_are_answered_per_dispatch_and_the_connection_survives) {
  dh_open("pipe", NULL);
  int fd = dh_raw_connect(worker.addr[0]);
  raw_request(fd, UVW_FRAME_TASK, 5, "echo");
  expect_frame(fd, UVW_FRAME_ACK, 5, 0);
  raw_request(fd, UVW_FRAME_TASK, 5, "echo"); /* id in use */
  expect_frame(fd, UVW_FRAME_NACK, 5, UVW_EPROTO);
  raw_request(fd, UVW_FRAME_SEND, 5, NULL); /* the first request must be Next */
  expect_frame(fd, UVW_FRAME_EXCEPTION, 5, UVW_EPROTO);
  raw_request(fd, UVW_FRAME_TASK, 6, "echo");
  raw_request(fd, UVW_FRAME_NEXT, 6, NULL);
  raw_request(fd, UVW_FRAME_NEXT, 6, NULL); /* a one-shot takes one step: it is over */
  expect_frame(fd, UVW_FRAME_ACK, 6, 0);
  expect_frame(fd, UVW_FRAME_RESULT, 6, 0);
  expect_frame(fd, UVW_FRAME_EXCEPTION, 6, UVW_EPROTO);
  raw_request(fd, UVW_FRAME_TASK, 7, "hang");
  raw_request(fd, UVW_FRAME_NEXT, 7, NULL);
  raw_request(fd, UVW_FRAME_NEXT, 7, NULL); /* a step while the first still runs */
  expect_frame(fd, UVW_FRAME_ACK, 7, 0);
  expect_frame(fd, UVW_FRAME_EXCEPTION, 7, UVW_EPROTO);
  raw_request(fd, UVW_FRAME_TASK, 8, "no_such_routine");
  expect_frame(fd, UVW_FRAME_NACK, 8, UVW_ENOROUTINE);
  /* A well-behaved stream on the same connection still works. */
  raw_request(fd, UVW_FRAME_TASK, 9, "counter_stream");
  raw_request(fd, UVW_FRAME_NEXT, 9, NULL);
  expect_frame(fd, UVW_FRAME_ACK, 9, 0);
  expect_frame(fd, UVW_FRAME_RESULT, 9, 0);
  raw_request(fd, UVW_FRAME_SEND, 9, NULL);
  uvw_frame_t *f = dh_raw_recv_frame(fd);
  cr_assert_eq(uvw_frame_kind(f), UVW_FRAME_RESULT);
  cr_assert_eq(uvw_value_as_int(uvw_frame_value(f)), 6);
  uvw_frame_free(f);
  raw_request(fd, UVW_FRAME_THROW, 9, NULL);
  f = dh_raw_recv_frame(fd);
  cr_assert_eq(uvw_frame_kind(f), UVW_FRAME_RESULT);
  cr_assert_str_eq(uvw_value_as_string(uvw_frame_value(f)), "caught:stop");
  cr_assert(uvw_frame_done(f));
  uvw_frame_free(f);
  close(fd);
  echo_works();
  dh_close();
}

/* ---- 1,000 concurrent dispatches on one connection ------------------------------------- */

#define MANY 1000
static dh_reply_t many[MANY];

Test(faults, a_thousand_concurrent_dispatches_on_one_connection_do_not_cross_talk) {
  dh_open("pipe", NULL);
  for (int i = 0; i < MANY; i++) {
    char id[32];
    snprintf(id, sizeof(id), "r%d", i);
    uvw_context_t *ctx = dh_enter(id);
    uvw_value_t *n = uvw_value_int(i);
    cr_assert_eq(uvw_conn_dispatch(conn, "read_and_mutate", &n, 1, NULL, dh_record, &many[i], NULL), 0);
    uvw_value_unref(n);
    dh_leave(ctx);
  }
  cr_assert_eq(uvw_conn_pending(conn), MANY);
  for (int i = 0; i < MANY; i++) dh_run_until(&loop, &many[i].calls, 1, 120000);
  for (int i = 0; i < MANY; i++) {
    char want[64];
    cr_assert_eq(many[i].calls, 1);
    cr_assert_eq(many[i].status, 0, "dispatch %d: %s", i, many[i].error_msg);
    snprintf(want, sizeof(want), "saw:r%d", i);
    cr_assert_str_eq(many[i].value, want);
    snprintf(want, sizeof(want), "r%d+worker", i);
    cr_assert_str_eq(many[i].request_id, want);
    cr_assert_eq(many[i].counter, i + 1);
    dh_reply_clear(&many[i]);
  }
  cr_assert_eq(uvw_conn_pending(conn), 0);
  dh_finish(&loop, conn);
  dh_stop(&worker);
}
