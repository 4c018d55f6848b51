/* A program linked with the static uvwool: one core of its own. Run under
 * libuvwool-preload.so it gets a second (the shared one the preload
 * brings), and its callbacks run in the other core: run_core_copies.sh
 * checks this is said once, naming both, and not said without the preload. */
#include <stdio.h>
#include <uv.h>

#include "uvwool/context.h"

static uvw_var_t *var;

static void on_timer(uv_timer_t *t) {
  uvw_value_t *out = NULL;
  printf("timer callback sees: %s\n", uvw_get(var, &out) == 0 ? uvw_value_as_string(out) : "(unset)");
  uv_close((uv_handle_t *)t, NULL);
}

int main(void) {
  if (uvw_var_declare("interpose", "request", NULL, &var) != 0) return 2;
  uvw_value_t *v = uvw_value_cstring("conn-1");
  uvw_set(var, v, NULL);
  uvw_value_unref(v);
  uv_timer_t t;
  uv_timer_init(uv_default_loop(), &t);
  uv_timer_start(&t, on_timer, 0, 0);
  uv_run(uv_default_loop(), UV_RUN_DEFAULT);
  return uv_loop_close(uv_default_loop()) != 0;
}
