/* The wrappers answer as libuv does: for NULL and closing handles and for
 * restarting an active watcher, the wrapper's return code is compared with
 * raw libuv's on an identical handle in the same test (never hard-coded),
 * and what fires afterwards is libuv's too. */
#include "looptest.h"

LT_FIXTURE(parity)

static void no_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  (void)h, (void)n;
  *b = uv_buf_init(NULL, 0);
}
static void no_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) { (void)s, (void)n, (void)b; }
static void no_connection(uv_stream_t *s, int status) { (void)s, (void)status; }
static int late;
static void late_timer(uv_timer_t *t) { (void)t, late++; }

Test(parity, a_null_stream_is_libuvs_to_judge) {
  cr_assert_eq(uvw_read_start(NULL, no_alloc, no_read), uv_read_start(NULL, no_alloc, no_read));
  cr_assert_neq(uv_read_start(NULL, no_alloc, no_read), 0);
  finish();
}

Test(parity, closing_handles_get_libuvs_answer_and_nothing_fires) {
  uv_timer_t raw_t, w_t;
  uv_pipe_t raw_p, w_p, raw_l, w_l;
  uv_handle_t *all[] = {(uv_handle_t *)&raw_t, (uv_handle_t *)&w_t, (uv_handle_t *)&raw_p,
                        (uv_handle_t *)&w_p,   (uv_handle_t *)&raw_l, (uv_handle_t *)&w_l};
  uv_timer_init(&loop, &raw_t);
  uv_timer_init(&loop, &w_t);
  uv_pipe_init(&loop, &raw_p, 0);
  uv_pipe_init(&loop, &w_p, 0);
  uv_pipe_init(&loop, &raw_l, 0);
  uv_pipe_init(&loop, &w_l, 0);
  for (int k = 0; k < 6; k++) uvw_close(all[k], NULL);
  cr_assert_eq(uvw_timer_start(&w_t, late_timer, 0, 0), uv_timer_start(&raw_t, late_timer, 0, 0));
  cr_assert_eq(uvw_read_start((uv_stream_t *)&w_p, no_alloc, no_read),
               uv_read_start((uv_stream_t *)&raw_p, no_alloc, no_read));
  cr_assert_eq(uvw_listen((uv_stream_t *)&w_l, 1, no_connection), uv_listen((uv_stream_t *)&raw_l, 1, no_connection));
  finish();
  cr_assert_eq(late, 0);
}

/* Starting an active idle / check / prepare again: libuv keeps the first
 * callback and returns 0; so does the wrapper, and the first callback keeps
 * its own capture. */
#define RESTART(kind)                                                                       \
  static int kind##_first_seen = -2, kind##_second_fired;                                   \
  static void kind##_first(uv_##kind##_t *h) {                                              \
    kind##_first_seen = (int)lt_read(var);                                                  \
    uvw_close((uv_handle_t *)h, NULL);                                                      \
  }                                                                                         \
  static void kind##_second(uv_##kind##_t *h) {                                             \
    kind##_second_fired++;                                                                  \
    uvw_close((uv_handle_t *)h, NULL);                                                      \
  }                                                                                         \
  Test(parity, restarting_an_active_##kind##_keeps_the_first_callback_and_capture) {        \
    uv_##kind##_t raw, w;                                                                   \
    uv_##kind##_init(&loop, &raw);                                                          \
    uv_##kind##_init(&loop, &w);                                                            \
    cr_assert_eq(uv_##kind##_start(&raw, kind##_first), 0);                                 \
    int raw_again = uv_##kind##_start(&raw, kind##_second);                                 \
    uv_close((uv_handle_t *)&raw, NULL);                                                    \
    lt_write(var, 1);                                                                       \
    lt_chain_id(scheduler_id);                                                              \
    cr_assert_eq(uvw_##kind##_start(&w, kind##_first), 0);                                  \
    lt_write(var, 2);                                                                       \
    cr_assert_eq(uvw_##kind##_start(&w, kind##_second), raw_again, "libuv's answer");       \
    lt_write(var, 3);                                                                       \
    while (uv_run(&loop, UV_RUN_NOWAIT)) {                                                  \
    }                                                                                       \
    cr_assert_eq(kind##_second_fired, 0, "the first callback is kept");                    \
    cr_assert_eq(kind##_first_seen, 1, "in the first start's capture");                     \
    finish();                                                                               \
  }
RESTART(idle)
RESTART(check)
RESTART(prepare)
