/* A program built only against an installed uvwool: set, read back, reset. */
#include <stdio.h>
#include <string.h>
#include <uvwool.h>

int main(void) {
  uvw_var_t *var;
  uvw_value_t *val = uvw_value_cstring("from-consumer"), *out = NULL;
  uvw_token_t *tok;
  if (uvw_var_declare("consumer", "greeting", NULL, &var) != 0) return 1;
  if (uvw_set(var, val, &tok) != 0) return 2;
  if (uvw_get(var, &out) != 0 || strcmp(uvw_value_as_string(out), "from-consumer") != 0) return 3;
  if (uvw_reset(var, tok) != 0 || uvw_get(var, &out) != UVW_ELOOKUP) return 4;
  uvw_token_free(tok);
  uvw_value_unref(val);
  printf("consumer ok: uvwool %s\n", uvw_version_string());
  return 0;
}
