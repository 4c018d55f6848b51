/* A plain uv_queue_work whose work callback reads a variable set on the
 * loop thread, in a transparent mode. Without UVWOOL_QUEUE_WORK the pool
 * thread runs in the submission's context, so the read is a thread
 * ChainContention; with UVWOOL_QUEUE_WORK=to_thread it runs in a detached
 * fork (as uvw_to_thread): it sees the value on a chain of its own, and its
 * write never flows back.
 *
 * usage: queue_work_mode contention|to_thread */
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "uvwool/context.h"
#include "uvwool/errors.h"

static uvw_var_t *var;
static int work_rc = 1;
static char work_seen[32], work_chain[33], main_chain[33], after_seen[32];

static void chain_of_current(char out[33]) {
  out[0] = '\0';
  uvw_context_chain_id(uvw_context_current(), out);
}

static void set_string(const char *s) {
  uvw_value_t *v = uvw_value_cstring(s);
  uvw_set(var, v, NULL);
  uvw_value_unref(v);
}

static void on_work(uv_work_t *req) {
  (void)req;
  uvw_value_t *out = NULL;
  work_rc = uvw_get(var, &out);
  snprintf(work_seen, sizeof work_seen, "%s", work_rc == 0 ? uvw_value_as_string(out) : "");
  chain_of_current(work_chain);
  if (work_rc == 0) set_string("written by the work");
}

static void on_after(uv_work_t *req, int status) {
  (void)req;
  (void)status;
  uvw_value_t *out = NULL;
  snprintf(after_seen, sizeof after_seen, "%s", uvw_get(var, &out) == 0 ? uvw_value_as_string(out) : "");
}

static int check(const char *what, int ok) {
  printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  return !ok;
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  int to_thread = strcmp(argv[1], "to_thread") == 0;
  if (uvw_var_declare("interpose", "request", NULL, &var) != 0) return 2;
  set_string("main");
  chain_of_current(main_chain);
  static uv_work_t req;
  uv_loop_t *loop = uv_default_loop();
  if (uv_queue_work(loop, &req, on_work, on_after) != 0) return 3;
  uv_run(loop, UV_RUN_DEFAULT);
  int failures = check("the main context is armed", main_chain[0] != '\0');
  failures += check("after_work_cb sees the loop thread's value", strcmp(after_seen, "main") == 0);
  if (to_thread) {
    failures += check("work_cb reads without contention", work_rc == 0);
    failures += check("work_cb sees the value", strcmp(work_seen, "main") == 0);
    failures += check("work_cb runs on a chain of its own",
                      work_chain[0] != '\0' && strcmp(work_chain, main_chain) != 0);
  } else {
    failures += check("work_cb's read is a ChainContention", work_rc == UVW_ECONTENTION);
    failures += check("work_cb runs in the submission's chain", strcmp(work_chain, main_chain) == 0);
  }
  uv_loop_close(loop);
  return failures != 0;
}
