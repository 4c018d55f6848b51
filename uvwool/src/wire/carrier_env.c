/* The environment carrier: a parent renders UVWOOL_CHAIN for a child
 * process; the child mounts it at start.
 *
 * A child process runs concurrently with its parent and never writes back,
 * which is a spawned task's situation (docs/semantics.md §3, copy-on-fork): so the
 * rendering is a fork's, with the values, without pending resets and
 * without the id, and the child mints its own id when it mounts. */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "context.h"
#include "error.h"
#include "wire_int.h"

int uvw_env_encode(uvw_context_t *ctx, char **out) {
  if (out == NULL) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "uvw_env_encode: out is NULL");
    return UVW_EINVAL;
  }
  *out = NULL;
  const uvw_context_t *c = ctx ? ctx : uvw__thread()->current;
  if (c == NULL || c->chain == NULL) return 0; /* unarmed: nothing to pass on */
  void *bytes;
  size_t len;
  int rc = uvw__manifest_encode(ctx, UVW__MANIFEST_NO_ID | UVW__MANIFEST_NO_RESETS, &bytes, &len);
  if (rc != 0) return rc;
  char *text = uvw__b64url_encode(bytes, len);
  uvw__free(bytes);
  if (text == NULL) return uvw__error_nomem("environment carrier");
  size_t prefix = strlen(UVW_ENV_CHAIN) + 1, tlen = strlen(text);
  char *s = uvw__malloc(prefix + tlen + 1);
  if (s == NULL) {
    uvw__free(text);
    return uvw__error_nomem("environment carrier");
  }
  memcpy(s, UVW_ENV_CHAIN "=", prefix);
  memcpy(s + prefix, text, tlen + 1);
  uvw__free(text);
  *out = s;
  return 0;
}

int uvw_env_mount(void) {
  const char *text = getenv(UVW_ENV_CHAIN);
  if (text == NULL || text[0] == '\0') return 0;
  uvw_manifest_t *m;
  int rc = uvw_text_decode(text, strlen(text), &m);
  if (rc != 0) return rc;
  rc = uvw_manifest_mount(m);
  uvw_manifest_free(m);
  return rc;
}
