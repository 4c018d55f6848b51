/* Streaming dispatch to a real worker process: context on every step, a
 * token kept across yields, SEND and THROW, interleaved streams on one
 * chain (docs/testing.md row 29, 36). */
#include "harness.h"

/* A stream driven from its own callbacks: each reply is recorded, then the
 * next step is made from inside the callback (so it carries the context the
 * callback sees, merged). */
typedef struct driver_s {
  uvw_dispatch_t *d;
  dh_reply_t r[8];
  int steps;
  const char *rename_at_1; /* request_id set by the caller after step 1 */
  int stop_after;          /* make no step after this one (0: go to the end) */
} driver_t;

static void drive(uvw_dispatch_t *d, const uvw_reply_t *reply, void *arg) {
  driver_t *dr = arg;
  dh_record(d, reply, &dr->r[dr->steps]);
  int k = ++dr->steps;
  if (reply->done || reply->status != 0 || k == dr->stop_after) return;
  if (k == 1 && dr->rename_at_1) dh_set_str(dh_request_id, dr->rename_at_1);
  int rc;
  if (k == 3) {
    uvw_value_t *v = uvw_value_int(10);
    rc = uvw_dispatch_send(d, v, drive, dr);
    uvw_value_unref(v);
  } else if (k == 4) {
    uvw_error_t *e = uvw_error_new("StopIt", 0, "enough");
    rc = uvw_dispatch_throw(d, e, drive, dr);
    uvw_error_unref(e);
  } else {
    rc = uvw_dispatch_next(d, drive, dr);
  }
  cr_assert_eq(rc, 0, "step %d: %s", k + 1, uvw_error_message(uvw_last_error()));
}

Test(stream, context_flows_both_ways_on_every_step) {
  dh_open("pipe", NULL);
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  dh_set_str(dh_request_id, "S");
  char chain[33];
  dh_chain_id(chain);
  driver_t dr = {.rename_at_1 = "S2"};
  cr_assert_eq(uvw_conn_dispatch_stream(conn, "counter_stream", NULL, 0, NULL, &dr.d), 0);
  cr_assert_eq(uvw_dispatch_next(dr.d, drive, &dr), 0);
  cr_assert_eq(uvw_dispatch_next(dr.d, drive, &dr), UVW_EINVAL, "one step at a time");
  dh_run_until(&loop, &dr.steps, 5, 30000);
  for (int i = 0; i < 5; i++) {
    cr_assert_eq(dr.r[i].status, 0, "step %d: %s", i + 1, dr.r[i].error_msg);
    cr_assert_str_eq(dr.r[i].chain, chain, "step %d keeps the caller's chain", i + 1);
  }
  /* step 1: the caller's value arrived, the routine's tenant came back */
  cr_assert_str_eq(dr.r[0].value, "1:S:stream-tenant");
  cr_assert_str_eq(dr.r[0].tenant, "stream-tenant");
  cr_assert_eq(dr.r[0].counter, 1);
  cr_assert_not(dr.r[0].done);
  /* step 2: the token set at step 1 reset after the yield; the reset
   * reached the caller as an unbinding */
  cr_assert_str_eq(dr.r[1].value, "reset:ok");
  cr_assert_str_eq(dr.r[1].tenant, "-");
  cr_assert_eq(dr.r[1].counter, 2);
  cr_assert_str_eq(dr.r[1].request_id, "S2", "the caller's change between steps travelled");
  /* step 3 sees the caller's renamed request id */
  cr_assert_str_eq(dr.r[2].value, "3:S2:-");
  cr_assert_eq(dr.r[2].counter, 3);
  /* SEND 10: the routine set counter = 10 and yielded 20 */
  cr_assert_eq(dr.r[3].ivalue, 20);
  cr_assert_eq(dr.r[3].counter, 10);
  /* THROW: the routine caught it and ended the stream */
  cr_assert_str_eq(dr.r[4].value, "caught:enough");
  cr_assert(dr.r[4].done);
  cr_assert(uvw_dispatch_done(dr.d));
  cr_assert_eq(uvw_dispatch_next(dr.d, drive, &dr), UVW_EINVAL, "the stream has ended");
  /* The caller's own context: untouched by apply-back into the captures. */
  cr_assert_str_eq(dh_str(dh_request_id), "S");
  uvw_dispatch_close(dr.d);
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
  for (int i = 0; i < 8; i++) dh_reply_clear(&dr.r[i]);
  dh_close();
}

Test(stream, an_unarmed_stream_armed_by_the_routine_is_found_again_by_the_next_step) {
  dh_open("pipe", NULL);
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  driver_t dr = {.stop_after = 2};
  cr_assert_eq(uvw_conn_dispatch_stream(conn, "counter_stream", NULL, 0, NULL, &dr.d), 0);
  cr_assert_eq(uvw_dispatch_next(dr.d, drive, &dr), 0);
  dh_run_until(&loop, &dr.steps, 2, 30000);
  cr_assert_str_eq(dr.r[0].value, "1:-:stream-tenant");
  cr_assert_eq(strlen(dr.r[0].chain), 32, "the routine armed the chain; the caller mounted it");
  /* Step 2 carried that chain id: the worker found the context it filed
   * under it, so the token from step 1 was still valid there. */
  cr_assert_str_eq(dr.r[1].value, "reset:ok");
  cr_assert_str_eq(dr.r[1].chain, dr.r[0].chain);
  /* Closing with step 3 pending cancels it, merging nothing; its callback
   * runs from the loop, never inside uvw_dispatch_close. */
  dh_reply_t third = {0};
  cr_assert_eq(uvw_dispatch_next(dr.d, dh_record, &third), 0);
  uvw_dispatch_close(dr.d);
  cr_assert_eq(third.calls, 0, "the callback ran inside uvw_dispatch_close");
  dh_run_until(&loop, &third.calls, 1, 30000);
  cr_assert_eq(third.calls, 1);
  cr_assert_eq(third.status, UVW_ECANCELED);
  cr_assert_str_eq(third.tenant, "-");
  dh_reply_clear(&third);
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
  for (int i = 0; i < 8; i++) dh_reply_clear(&dr.r[i]);
  dh_close();
}

/* Two streams on one chain, stepped alternately and concurrently: neither
 * side's guard trips, and each stream keeps its own worker context. */
static void step_once(uvw_dispatch_t *d, dh_reply_t *r) {
  cr_assert_eq(uvw_dispatch_next(d, dh_record, r), 0);
}

Test(stream, two_streams_interleaved_on_one_chain_never_trip_the_guard) {
  dh_open("pipe", NULL);
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  dh_set_str(dh_request_id, "I");
  char chain[33];
  dh_chain_id(chain);
  uvw_dispatch_t *a, *b;
  cr_assert_eq(uvw_conn_dispatch_stream(conn, "counter_stream", NULL, 0, NULL, &a), 0);
  cr_assert_eq(uvw_conn_dispatch_stream(conn, "counter_stream", NULL, 0, NULL, &b), 0);
  dh_reply_t ra[3] = {0}, rb[3] = {0};
  for (int k = 0; k < 3; k++) {
    /* both steps in flight at once, from the same context and chain */
    step_once(a, &ra[k]);
    step_once(b, &rb[k]);
    dh_run_until(&loop, &ra[k].calls, 1, 30000);
    dh_run_until(&loop, &rb[k].calls, 1, 30000);
    cr_assert_eq(ra[k].status, 0, "A step %d: %s", k + 1, ra[k].error_msg);
    cr_assert_eq(rb[k].status, 0, "B step %d: %s", k + 1, rb[k].error_msg);
    cr_assert_str_eq(ra[k].chain, chain);
    cr_assert_str_eq(rb[k].chain, chain);
  }
  cr_assert_str_eq(ra[0].value, "1:I:stream-tenant");
  cr_assert_str_eq(rb[0].value, "1:I:stream-tenant");
  cr_assert_str_eq(ra[1].value, "reset:ok", "each stream kept its own token");
  cr_assert_str_eq(rb[1].value, "reset:ok");
  /* Step 3 was sent from the test's context, which never merged step 2's
   * reset (that went into step 2's capture): tenant is unbound here because
   * it was never bound in this context, and the worker kept its own view. */
  cr_assert_str_eq(ra[2].value, "3:I:-");
  cr_assert_str_eq(rb[2].value, "3:I:-");
  uvw_dispatch_close(a);
  uvw_dispatch_close(b);
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
  for (int k = 0; k < 3; k++) {
    dh_reply_clear(&ra[k]);
    dh_reply_clear(&rb[k]);
  }
  dh_close();
}

Test(stream, a_refused_stream_reports_the_refusal_at_its_first_step) {
  dh_open("pipe", NULL);
  uvw_dispatch_t *d;
  dh_reply_t r = {0};
  cr_assert_eq(uvw_conn_dispatch_stream(conn, "no_such_stream", NULL, 0, NULL, &d), 0);
  cr_assert_eq(uvw_dispatch_next(d, dh_record, &r), 0);
  dh_run_until(&loop, &r.calls, 1, 30000);
  cr_assert_eq(r.status, UVW_ENACK);
  cr_assert(r.done);
  cr_assert_eq(uvw_dispatch_next(d, dh_record, &r), UVW_ENACK, "later steps report it too");
  uvw_dispatch_close(d);
  dh_reply_clear(&r);
  dh_close();
}

/* A step's callback that makes the next step and closes the stream (what
 * an async iterator does when the loop body breaks after a value): the
 * next step is cancelled from the loop, once, after that callback returned,
 * and the stream is freed only after that second callback (a double free
 * and a read of freed memory before the fix; ASan and valgrind watch it). */
static dh_reply_t first_of_two, cancelled_second;

static void step_then_close(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg) {
  dh_record(d, r, arg);
  cr_assert_eq(uvw_dispatch_next(d, dh_record, &cancelled_second), 0);
  uvw_dispatch_close(d);
  cr_assert_eq(cancelled_second.calls, 0, "the callback ran inside uvw_dispatch_close");
}

Test(stream, closing_inside_a_step_callback_with_the_next_step_pending_cancels_it_later) {
  dh_open("pipe", NULL);
  uvw_dispatch_t *d;
  cr_assert_eq(uvw_conn_dispatch_stream(conn, "hang_after_one", NULL, 0, NULL, &d), 0);
  cr_assert_eq(uvw_dispatch_next(d, step_then_close, &first_of_two), 0);
  dh_run_until(&loop, &cancelled_second.calls, 1, 30000);
  cr_assert_eq(first_of_two.calls, 1);
  cr_assert_eq(first_of_two.status, 0);
  cr_assert_str_eq(first_of_two.value, "one");
  cr_assert_eq(cancelled_second.calls, 1);
  cr_assert_eq(cancelled_second.status, UVW_ECANCELED);
  cr_assert(cancelled_second.done);
  cr_assert_eq(uvw_conn_pending(conn), 0);
  dh_reply_clear(&first_of_two);
  dh_reply_clear(&cancelled_second);
  dh_close();
}
