/* Link-time transparent mode from an installed uvwool: plain libuv code,
 * built with uvwool_transparent(); the timer callback must see the value
 * set when it was registered, not the one set after. */
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include <uvwool.h>

static uvw_var_t *var;
static const char *seen = "(none)";

static void set(const char *s) {
  uvw_value_t *v = uvw_value_cstring(s);
  uvw_set(var, v, NULL);
  uvw_value_unref(v);
}
static void on_timer(uv_timer_t *t) {
  uvw_value_t *out;
  seen = uvw_get(var, &out) == 0 ? strdup(uvw_value_as_string(out)) : "(unset)";
  uv_close((uv_handle_t *)t, NULL);
}

int main(void) {
  if (uvw_var_declare("consumer", "transparent", NULL, &var) != 0) return 1;
  uv_timer_t t;
  uv_timer_init(uv_default_loop(), &t);
  set("at-registration");
  uv_timer_start(&t, on_timer, 1, 0);
  set("later");
  uv_run(uv_default_loop(), UV_RUN_DEFAULT);
  if (strcmp(seen, "at-registration") != 0) {
    printf("transparent FAILED: the callback saw %s\n", seen);
    return 2;
  }
  printf("transparent ok: the callback saw %s\n", seen);
  return uv_loop_close(uv_default_loop()) == 0 ? 0 : 3;
}
