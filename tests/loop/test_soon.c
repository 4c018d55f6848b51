/* call-soon, the thread-safe call-soon (row 19) and uv_async_init on a real
 * loop. */
#include <pthread.h>

#include "looptest.h"

static uvw_var_t *var;
static uv_loop_t loop;

static void setup(void) {
  var = tu_var("v", NULL);
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(uvw_loop_attach(&loop), 0);
}
TestSuite(soon, .init = setup);

typedef struct {
  long seen;
  char id[33];
  int order;
} probe_t;
static int order_counter;

static void probe(void *arg) {
  probe_t *p = arg;
  p->seen = lt_read(var);
  lt_chain_id(p->id);
  p->order = ++order_counter;
  lt_write(var, 77);
}

Test(soon, call_soon_runs_next_iteration_in_the_context_at_registration) {
  probe_t a = {0}, b = {0};
  char me[33];
  lt_write(var, 1);
  lt_chain_id(me);
  cr_assert_eq(uvw_loop_call_soon(&loop, probe, &a), 0);
  lt_write(var, 2);
  cr_assert_eq(uvw_loop_call_soon(&loop, probe, &b), 0);
  cr_assert_eq(a.order, 0, "not run synchronously");
  lt_finish(&loop);
  cr_assert_eq(a.seen, 1);
  cr_assert_eq(b.seen, 2, "each call captures its own moment");
  cr_assert_eq(a.order, 1);
  cr_assert_eq(b.order, 2, "FIFO");
  cr_assert_str_eq(a.id, me);
  cr_assert_eq(lt_read(var), 2, "the callback's write did not leak");
}

static probe_t chained_inner;
static void chain_outer(void *arg) {
  (void)arg;
  lt_write(var, 10);
  uvw_loop_call_soon(&loop, probe, &chained_inner); /* carries the write forward */
}

Test(soon, writes_flow_forward_into_what_a_callback_registers) {
  lt_write(var, 1);
  uvw_loop_call_soon(&loop, chain_outer, NULL);
  lt_finish(&loop);
  cr_assert_eq(chained_inner.seen, 10);
  cr_assert_eq(lt_read(var), 1);
}

/* Row 19: an unarmed foreign thread's callback sees the fallback; the
 * loop's own sees its value; a foreign thread that armed its own chain trips
 * the guard on the loop. */
typedef struct {
  int arm;
  int rc;
} sender_t;

static long ts_seen[2];
static int ts_rc[2];
static char ts_kind[16];
static int ts_done;

static void ts_probe(void *arg) {
  long i = (long)(intptr_t)arg;
  uvw_value_t *out = NULL;
  ts_rc[i] = uvw_get_or(var, NULL, &out);
  ts_seen[i] = out ? (long)uvw_value_as_int(out) : -1;
  if (ts_rc[i] == UVW_ECONTENTION) snprintf(ts_kind, sizeof ts_kind, "%s", uvw_error_field(uvw_last_error(), "kind"));
  if (++ts_done == 2) uv_stop(&loop);
}

static void give_up(uv_timer_t *t) { uv_stop(t->loop); }

static void *sender(void *arg) {
  sender_t *s = arg;
  if (s->arm) lt_write(var, 500);
  s->rc = uvw_loop_call_soon_threadsafe(&loop, ts_probe, (void *)(intptr_t)s->arm);
  return NULL;
}

Test(soon, threadsafe_call_soon_carries_the_sending_threads_context) {
  lt_write(var, 1); /* the loop thread's own value: neither sender sees it */
  sender_t unarmed = {0, -1}, armed = {1, -1};
  pthread_t a, b;
  pthread_create(&a, NULL, sender, &unarmed);
  pthread_create(&b, NULL, sender, &armed);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  cr_assert_eq(unarmed.rc, 0);
  cr_assert_eq(armed.rc, 0);
  /* uvwool's async is unref'd (it must not keep loops alive): a timer keeps
   * this one running until both callbacks ran, or gives up after 2 s. */
  uv_timer_t keepalive;
  uv_timer_init(&loop, &keepalive);
  uv_timer_start(&keepalive, give_up, 2000, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&keepalive, NULL);
  lt_finish(&loop);
  cr_assert_eq(ts_done, 2);
  cr_assert_eq(ts_rc[0], 0, "an unarmed sender's context is no one's");
  cr_assert_eq(ts_seen[0], -1, "and it sees the fallback, not the loop's value");
  cr_assert_eq(ts_rc[1], UVW_ECONTENTION, "the armed sender's chain belongs to its thread");
  cr_assert_str_eq(ts_kind, "thread");
}

Test(soon, threadsafe_call_soon_needs_an_attached_loop) {
  uv_loop_t other;
  uv_loop_init(&other);
  cr_assert_eq(uvw_loop_call_soon_threadsafe(&other, ts_probe, NULL), UVW_EINVAL);
  cr_assert_not_null(strstr(uvw_error_message(uvw_last_error()), "attach"));
  cr_assert_eq(uv_loop_close(&other), 0);
  lt_finish(&loop);
}

static long async_seen[2];
static int async_fired;
static uv_timer_t resend;
static void send_again(uv_timer_t *t) {
  uv_async_send(t->data);
  uv_close((uv_handle_t *)t, NULL);
}
static void on_async(uv_async_t *h) {
  async_seen[async_fired++] = lt_read(var);
  lt_write(var, 40);
  if (async_fired == 1) {
    /* The second send only after the first callback ran: sends coalesce,
     * so two sends racing the loop could make a single callback. */
    uv_timer_init(h->loop, &resend);
    resend.data = h;
    uv_timer_start(&resend, send_again, 1, 0);
  } else {
    uvw_close((uv_handle_t *)h, NULL);
  }
}
static void *send_async(void *arg) {
  uv_async_send(arg);
  return NULL;
}

Test(soon, async_callback_runs_in_the_context_captured_at_init_whoever_sends) {
  uv_async_t async;
  lt_write(var, 3);
  cr_assert_eq(uvw_async_init(&loop, &async, on_async), 0);
  lt_write(var, 4);
  pthread_t th;
  pthread_create(&th, NULL, send_async, &async);
  pthread_join(th, NULL);
  lt_finish(&loop);
  cr_assert_eq(async_fired, 2);
  cr_assert_eq(async_seen[0], 3);
  cr_assert_eq(async_seen[1], 40, "one capture per registration, reused");
}
