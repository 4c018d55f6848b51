/* uv_spawn's exit callback on a real loop (docs/testing.md rows 17 and 22 for
 * the process-exit done-callback). Children are /bin/sh one-liners. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop_internal.h"
#include "looptest.h"

static uvw_var_t *var;
static uv_loop_t loop;
static char scheduler_id[33];
static uv_timer_t guard;

static void guard_fired(uv_timer_t *t) {
  (void)t;
  cr_assert_fail("the child's exit was never reported");
}

static void setup(void) {
  var = tu_var("v", NULL);
  cr_assert_eq(uv_loop_init(&loop), 0);
  /* Bound every test: an unref'd timer that fails the test if the loop is
   * still waiting for a child after 10 s, without keeping the loop alive. */
  uv_timer_init(&loop, &guard);
  uv_timer_start(&guard, guard_fired, 10000, 0);
  uv_unref((uv_handle_t *)&guard);
}
TestSuite(process, .init = setup);

static void finish(void) {
  uv_close((uv_handle_t *)&guard, NULL);
  lt_finish(&loop);
}

static int registered(const void *key) {
  uvw__loop_t *L = uvw__loop_find(&loop);
  return L != NULL && uvw__reg_find(L, key, UVW__SLOT_MAIN) != NULL;
}

static char *exit3_args[] = {"/bin/sh", "-c", "exit 3", NULL};

/* Options zeroed first, so a byte comparison later sees every byte. */
static void options_for(uv_process_options_t *o, char **args, uv_exit_cb cb) {
  memset(o, 0, sizeof *o);
  o->file = args[0];
  o->args = args;
  o->exit_cb = cb;
}

typedef struct {
  int fired;
  long seen;
  char id[33];
  int64_t status;
  int signal;
  void *data;
  int close_in_cb;
} probe_t;

static void exit_probe(uv_process_t *h, int64_t status, int term_signal) {
  probe_t *p = h->data;
  p->fired++;
  p->seen = lt_read(var);
  lt_chain_id(p->id);
  p->status = status;
  p->signal = term_signal;
  p->data = h->data;
  lt_write(var, -7); /* must not leak back */
  if (p->close_in_cb) uvw_close((uv_handle_t *)h, NULL);
}

Test(process, exit_callback_runs_in_the_context_of_spawn) {
  probe_t p = {.close_in_cb = 1};
  uv_process_t h;
  h.data = &p;
  uv_process_options_t o, snapshot;
  options_for(&o, exit3_args, exit_probe);
  memcpy(&snapshot, &o, sizeof o);
  lt_write(var, 10);
  lt_chain_id(scheduler_id);
  cr_assert_neq(scheduler_id[0], '\0');
  cr_assert_eq(uvw_spawn(&loop, &h, &o), 0);
  lt_write(var, 11); /* after spawn: not seen */
  cr_assert_eq(memcmp(&o, &snapshot, sizeof o), 0, "the caller's options are untouched");
  cr_assert_eq(o.exit_cb, exit_probe);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(p.fired, 1);
  cr_assert_eq(p.status, 3, "exit status reported");
  cr_assert_eq(p.signal, 0);
  cr_assert_eq(p.seen, 10, "the value current at spawn");
  cr_assert_str_eq(p.id, scheduler_id, "the scheduler's chain");
  cr_assert_eq(lt_read(var), 11, "the callback's write did not leak back");
  cr_assert_eq(p.data, &p, "handle->data is the user's");
  cr_assert_not(registered(&h));
  finish();
}

/* Killed by a signal: the signal is reported, still in the captured context. */
Test(process, killed_child_reports_its_signal_in_the_captured_context) {
  static char *args[] = {"/bin/sh", "-c", "kill -TERM $$", NULL};
  probe_t p = {.close_in_cb = 1};
  uv_process_t h;
  h.data = &p;
  uv_process_options_t o;
  options_for(&o, args, exit_probe);
  lt_write(var, 10);
  lt_chain_id(scheduler_id);
  cr_assert_eq(uvw_spawn(&loop, &h, &o), 0);
  lt_write(var, 11);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(p.fired, 1);
  cr_assert_eq(p.signal, SIGTERM);
  cr_assert_eq(p.seen, 10);
  cr_assert_eq(lt_read(var), 11);
  finish();
}

/* ---- release (row 22) --------------------------------------------------------- */


static int quiet_fired;
static void quiet_exit(uv_process_t *h, int64_t status, int term_signal) {
  (void)h, (void)status, (void)term_signal;
  quiet_fired++;
}

Test(process, capture_is_released_after_the_exit_callback) {
  uv_process_t h;
  uv_process_options_t o;
  options_for(&o, exit3_args, quiet_exit);
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(var);
  cr_assert_eq(uvw_spawn(&loop, &h, &o), 0);
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before, "the spawn's capture holds the value");
  /* The exited process handle is inactive: the loop returns with it open. */
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(quiet_fired, 1);
  cr_assert_eq(tu_released(), before + 1, "released by the exit callback, before any close");
  cr_assert_not(registered(&h));
  uvw_close((uv_handle_t *)&h, NULL);
  finish();
}

Test(process, closing_before_exit_releases_the_capture) {
  uv_process_t h;
  uv_process_options_t o;
  options_for(&o, exit3_args, quiet_exit);
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(var);
  cr_assert_eq(uvw_spawn(&loop, &h, &o), 0);
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before);
  int pid = h.pid;
  uvw_close((uv_handle_t *)&h, NULL);
  cr_assert_eq(tu_released(), before + 1, "uvw_close released it");
  cr_assert_not(registered(&h));
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(quiet_fired, 0, "a closed handle reports no exit");
  /* libuv stopped watching the child: reap it here. */
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  finish();
}

/* ---- refusals and the pass-through ------------------------------------------- */

Test(process, failing_spawn_returns_libuvs_code_and_keeps_nothing) {
  static char *args[] = {"/nonexistent-uvwool/no-such-binary", NULL};
  uv_process_t h, h_raw;
  uv_process_options_t o, snapshot;
  options_for(&o, args, quiet_exit);
  memcpy(&snapshot, &o, sizeof o);
  int expect = uv_spawn(&loop, &h_raw, &o);
  cr_assert_eq(expect, UV_ENOENT, "%s", uv_strerror(expect));
  uv_close((uv_handle_t *)&h_raw, NULL); /* libuv initialised the handle anyway */
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(var);
  cr_assert_eq(uvw_spawn(&loop, &h, &o), expect, "libuv's own code");
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before + 1, "the failed spawn kept no capture");
  cr_assert_not(registered(&h));
  cr_assert_eq(memcmp(&o, &snapshot, sizeof o), 0, "the caller's options are untouched");
  uvw_close((uv_handle_t *)&h, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(quiet_fired, 0);
  finish();
}

Test(process, no_exit_callback_is_a_plain_spawn) {
  uv_process_t h;
  uv_process_options_t o;
  options_for(&o, exit3_args, NULL);
  lt_write(var, 5);
  cr_assert_eq(uvw_spawn(&loop, &h, &o), 0);
  cr_assert_not(registered(&h), "nothing to capture");
  uv_run(&loop, UV_RUN_DEFAULT); /* returns once the child is reaped */
  uvw_close((uv_handle_t *)&h, NULL);
  finish();
}

/* The context crosses into the child through UVWOOL_CHAIN. The child shell
 * writes what it received to a file; the test decodes it independently of
 * the spawn path, with the wire API. */
static char env_file[64];
static char *dump_env_args[] = {"/bin/sh", "-c", "printf %s \"$UVWOOL_CHAIN\" > \"$DUMP\"", NULL};

static void dumped(uv_process_t *h, int64_t status, int term_signal) {
  cr_assert_eq(status, 0);
  cr_assert_eq(term_signal, 0);
  uvw_close((uv_handle_t *)h, NULL);
}

static void spawn_dumping(char **env) {
  uv_process_t proc;
  uv_process_options_t o;
  options_for(&o, dump_env_args, dumped);
  o.env = env;
  cr_assert_eq(uvw_spawn(&loop, &proc, &o), 0);
  uv_run(&loop, UV_RUN_DEFAULT); /* until the child exited and its handle closed */
}

static size_t read_dump(char *buf, size_t cap) {
  FILE *f = fopen(env_file, "r");
  cr_assert_not_null(f);
  size_t n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  return n;
}

Test(process, the_child_receives_the_context_in_UVWOOL_CHAIN) {
  snprintf(env_file, sizeof env_file, "/tmp/uvwool-env-%d", (int)getpid());
  char dump[96];
  snprintf(dump, sizeof dump, "DUMP=%s", env_file);
  char *env[] = {dump, "PATH=/usr/bin:/bin", NULL};

  spawn_dumping(env); /* unarmed: nothing added */
  char text[4096];
  cr_assert_eq(read_dump(text, sizeof text), 0, "an unarmed parent passes no chain");

  lt_write(var, 42);
  spawn_dumping(env);
  size_t n = read_dump(text, sizeof text);
  cr_assert_gt(n, 0);
  uvw_manifest_t *m;
  cr_assert_eq(uvw_text_decode(text, n, &m), 0, "%s", uvw_error_message(uvw_last_error()));
  char id[33];
  cr_assert_neq(uvw_manifest_id(m, id), 0, "rendered like a fork: the child mints its own id");
  int found = 0;
  for (size_t i = 0; i < uvw_manifest_entry_count(m); i++)
    if (uvw_manifest_entry_var(m, i) == var) found = (int)uvw_value_as_int(uvw_manifest_entry_value(m, i));
  cr_assert_eq(found, 42);
  uvw_manifest_free(m);

  char *explicit_env[] = {dump, "UVWOOL_CHAIN=callers-own", NULL};
  spawn_dumping(explicit_env);
  read_dump(text, sizeof text);
  cr_assert_str_eq(text, "callers-own", "an explicit UVWOOL_CHAIN is the caller's choice");
  cr_assert_str_eq(explicit_env[1], "UVWOOL_CHAIN=callers-own", "the caller's array is untouched");
  unlink(env_file);
  finish();
}
