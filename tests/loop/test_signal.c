/* Signals delivered with uv_kill(getpid(), ...) (docs/testing.md rows 17, 18, 22
 * for these edges): signal_start is multi-shot, signal_start_oneshot
 * one-shot. Every signal is sent only while a handle watches it (else the
 * default action would kill the test), and the next one only from the
 * previous one's callback, so deliveries never merge. */
#include <signal.h>
#include <unistd.h>

#include "looptest.h"

LT_FIXTURE(signal)

typedef struct {
  uv_signal_t sig;
  long base;
  int sends; /* this watcher sends the next signal from its callback */
  int fired, signum;
  long seen[3];
  char ids[3][33];
} watcher_t;

static void on_signal(uv_signal_t *h, int signum) {
  watcher_t *w = h->data;
  w->signum = signum;
  w->seen[w->fired] = lt_read(var);
  lt_chain_id(w->ids[w->fired]);
  lt_write(var, w->base + w->fired); /* seen by this registration's next delivery only */
  if (++w->fired < 3) {
    if (w->sends) cr_assert_eq(uv_kill(getpid(), signum), 0);
  } else {
    uvw_signal_stop(h);
  }
}

static void watcher_init(watcher_t *w, long base, int sends) {
  memset(w, 0, sizeof(*w));
  cr_assert_eq(uv_signal_init(&loop, &w->sig), 0);
  w->sig.data = w;
  w->base = base;
  w->sends = sends;
}

/* Two registrations on SIGUSR1: both see every delivery, each only its own
 * writes. */
Test(signal, signal_start_reuses_one_capture_per_registration) {
  watcher_t a, b;
  watcher_init(&a, 100, 1);
  watcher_init(&b, 200, 0);
  lt_write(var, 1);
  lt_chain_id(scheduler_id);
  cr_assert_eq(uvw_signal_start(&a.sig, on_signal, SIGUSR1), 0);
  cr_assert_eq(uvw_signal_start(&b.sig, on_signal, SIGUSR1), 0);
  lt_write(var, 2); /* after registration: not seen */
  cr_assert_eq(uv_kill(getpid(), SIGUSR1), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  watcher_t *ws[] = {&a, &b};
  for (int i = 0; i < 2; i++) {
    watcher_t *w = ws[i];
    cr_assert_eq(w->fired, 3);
    cr_assert_eq(w->signum, SIGUSR1);
    cr_assert_eq(w->seen[0], 1, "the value current at registration");
    cr_assert_eq(w->seen[1], w->base, "the previous delivery's write, and not the other registration's");
    cr_assert_eq(w->seen[2], w->base + 1);
    for (int k = 0; k < 3; k++) cr_assert_str_eq(w->ids[k], scheduler_id);
    cr_assert_eq(w->sig.data, w, "handle->data is the user's");
  }
  cr_assert_eq(lt_read(var), 2, "writes inside the callbacks did not leak back");
  uvw_close((uv_handle_t *)&a.sig, NULL);
  uvw_close((uv_handle_t *)&b.sig, NULL);
  finish();
}

Test(signal, signal_stop_and_close_release_the_capture) {
  watcher_t w;
  watcher_init(&w, 0, 0);
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_signal_start(&w.sig, on_signal, SIGUSR1), 0);
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before, "the capture holds the value");
  cr_assert_eq(uvw_signal_stop(&w.sig), 0);
  cr_assert_eq(tu_released(), before + 1, "signal_stop released it");
  ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_signal_start(&w.sig, on_signal, SIGUSR1), 0);
  lt_leave(ctx);
  uvw_close((uv_handle_t *)&w.sig, NULL);
  cr_assert_eq(tu_released(), before + 2, "close released it");
  finish();
}

/* ---- one-shot ------------------------------------------------------------------- */

Test(signal, signal_start_oneshot_runs_once_in_its_context_and_releases_it) {
  watcher_t a, b;
  watcher_init(&a, 100, 0);
  watcher_init(&b, 200, 0);
  lt_write(var, 1);
  lt_chain_id(scheduler_id);
  cr_assert_eq(uvw_signal_start_oneshot(&a.sig, on_signal, SIGUSR2), 0);
  cr_assert_eq(uvw_signal_start_oneshot(&b.sig, on_signal, SIGUSR2), 0);
  lt_write(var, 2);
  cr_assert_eq(uv_kill(getpid(), SIGUSR2), 0);
  uv_run(&loop, UV_RUN_DEFAULT); /* ends: both one-shot watchers stopped themselves */
  cr_assert_eq(a.fired, 1);
  cr_assert_eq(b.fired, 1);
  cr_assert_eq(a.signum, SIGUSR2);
  cr_assert_eq(a.seen[0], 1, "the value at registration");
  cr_assert_eq(b.seen[0], 1, "not the sibling's write");
  cr_assert_str_eq(a.ids[0], scheduler_id);
  cr_assert_str_eq(b.ids[0], scheduler_id);
  cr_assert_eq(lt_read(var), 2);

  /* Released after its one delivery, without stop or close. */
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_signal_start_oneshot(&a.sig, on_signal, SIGUSR2), 0);
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before, "the pending one-shot holds the value");
  cr_assert_eq(uv_kill(getpid(), SIGUSR2), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(a.fired, 2);
  cr_assert_eq(tu_released(), before + 1, "released after its delivery");

  /* A one-shot stopped before it fired releases too. */
  ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_signal_start_oneshot(&a.sig, on_signal, SIGUSR2), 0);
  lt_leave(ctx);
  cr_assert_eq(uvw_signal_stop(&a.sig), 0);
  cr_assert_eq(tu_released(), before + 2, "stop released it");
  uvw_close((uv_handle_t *)&a.sig, NULL);
  uvw_close((uv_handle_t *)&b.sig, NULL);
  finish();
}

/* libuv only swaps the callback of a handle already watching the signal and
 * keeps its mode: a signal_start on a one-shot watcher still fires once, so
 * its capture must be consumed by that one delivery. */
Test(signal, restart_on_the_same_signal_keeps_libuvs_mode) {
  watcher_t w;
  watcher_init(&w, 100, 0);
  lt_write(var, 1);
  cr_assert_eq(uvw_signal_start_oneshot(&w.sig, on_signal, SIGUSR2), 0);
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_signal_start(&w.sig, on_signal, SIGUSR2), 0);
  lt_leave(ctx);
  cr_assert_eq(uv_kill(getpid(), SIGUSR2), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(w.fired, 1, "libuv delivered once");
  cr_assert_eq(tu_released(), before + 1, "the replacing capture was consumed by that delivery");
  uvw_close((uv_handle_t *)&w.sig, NULL);
  finish();
}

Test(signal, errors_are_libuvs_and_keep_nothing) {
  watcher_t w;
  watcher_init(&w, 0, 0);
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(held);
  cr_assert_eq(uvw_signal_start(&w.sig, on_signal, 0), UV_EINVAL);
  cr_assert_eq(uvw_signal_start_oneshot(&w.sig, on_signal, 0), UV_EINVAL);
  /* libuv stores a NULL callback (and would call it): no signal is sent, and
   * the handle is stopped before the loop runs. */
  cr_assert_eq(uvw_signal_start(&w.sig, NULL, SIGUSR1), 0);
  cr_assert_eq(uvw_signal_stop(&w.sig), 0);
  cr_assert_eq(uvw_signal_start_oneshot(&w.sig, NULL, SIGUSR1), 0);
  cr_assert_eq(uvw_signal_stop(&w.sig), 0);
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before + 1, "nothing captured");
  /* A closing handle: libuv asserts, so it is not exercised here; the
   * wrappers pass it straight to libuv without capturing. */
  uvw_close((uv_handle_t *)&w.sig, NULL);
  finish();
}
