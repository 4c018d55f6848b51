/* Scripted context changes and a text digest of a context, shared by the
 * delta-manifest differential test (test_dispatch_delta.c) and the worker
 * routines it calls (routines.c), so both sides mutate and describe
 * contexts the same way. Public API only: routines.c is a plugin linked
 * with the shared library.
 *
 * A script is a list of operations separated by ';':
 *   s NAME TEXT   bind d.NAME to the string TEXT
 *   i NAME N      bind d.NAME to the integer N
 *   n NAME        bind d.NAME to nil
 *   b NAME HEX    bind d.NAME to the bytes HEX
 *   u NAME        bind d.NAME, then reset it with the token: unchanged if it
 *                 was bound, a pending reset if it was not
 *   o NAME        bind d.NAME to an opaque value no codec encodes (lenient:
 *                 left out of manifests with a warning; strict: the
 *                 manifest fails)
 * Variables are declared (namespace "d") on first use by the side that
 * runs the script; a side that never ran a script naming one meets it as
 * a stub. */
#ifndef UVWOOL_DSCRIPT_H
#define UVWOOL_DSCRIPT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uvwool.h>

static const uvw_opaque_ops_t dscript_no_codec = {"d.no_codec", NULL};

static inline uvw_var_t *dscript_var(const char *name) {
  uvw_var_t *v = uvw_var_find("d", name);
  if (v == NULL) uvw_var_declare("d", name, NULL, &v);
  return v;
}

/* Run one operation; 0 or the failing call's code. */
static inline int dscript_op(char op, const char *name, const char *arg) {
  uvw_var_t *var = dscript_var(name);
  if (var == NULL) return UVW_EINVAL;
  uvw_value_t *v = NULL;
  unsigned char bytes[64];
  size_t n = 0;
  switch (op) {
    case 's':
      v = uvw_value_cstring(arg);
      break;
    case 'i':
      v = uvw_value_int(strtoll(arg, NULL, 10));
      break;
    case 'n':
      v = uvw_value_nil();
      break;
    case 'b':
      for (; n < sizeof(bytes) && arg[2 * n] && arg[2 * n + 1]; n++) {
        char h[3] = {arg[2 * n], arg[2 * n + 1], 0};
        bytes[n] = (unsigned char)strtoul(h, NULL, 16);
      }
      v = uvw_value_bytes(bytes, n);
      break;
    case 'u': {
      uvw_token_t *t = NULL;
      v = uvw_value_cstring("transient");
      int rc = uvw_set(var, v, &t);
      uvw_value_unref(v);
      if (rc == 0) rc = uvw_reset(var, t);
      uvw_token_free(t);
      return rc;
    }
    case 'o': {
      static int dummy;
      v = uvw_value_opaque(&dummy, &dscript_no_codec);
      break;
    }
    default:
      return UVW_EINVAL;
  }
  int rc = v ? uvw_set(var, v, NULL) : UVW_ENOMEM;
  uvw_value_unref(v);
  return rc;
}

/* Run a script in the current context; 0 or the first failure's code. */
static inline int dscript_run(const char *script) {
  char buf[2048];
  snprintf(buf, sizeof(buf), "%s", script);
  for (char *save = NULL, *op = strtok_r(buf, ";", &save); op; op = strtok_r(NULL, ";", &save)) {
    char kind = 0, name[64] = "", arg[256] = "";
    if (sscanf(op, " %c %63s %255s", &kind, name, arg) < 2) return UVW_EINVAL;
    int rc = dscript_op(kind, name, arg);
    if (rc != 0) return rc;
  }
  return 0;
}

/* What a context holds, as its manifest would carry it (chain id left out:
 * each run mints its own), into out: "ns.name=kind:value" per entry, in
 * manifest order, "ns.name=RESET" for a pending reset; "unarmed" or
 * "error:CODE". */
static inline void dscript_digest(uvw_context_t *ctx, char *out, size_t cap) {
  void *bytes = NULL;
  size_t len = 0;
  int rc = uvw_manifest_encode(ctx, &bytes, &len);
  if (rc != 0 || bytes == NULL) {
    snprintf(out, cap, rc ? "error:%d" : "unarmed", rc);
    return;
  }
  uvw_manifest_t *m = NULL;
  rc = uvw_manifest_decode(bytes, len, &m);
  uvw_free(bytes);
  if (rc != 0) {
    snprintf(out, cap, "decode-error:%d", rc);
    return;
  }
  size_t k = 0;
  out[0] = '\0';
  for (size_t i = 0; i < uvw_manifest_entry_count(m) && k + 1 < cap; i++) {
    uvw_var_t *var = uvw_manifest_entry_var(m, i);
    uvw_value_t *v = uvw_manifest_entry_value(m, i);
    k += (size_t)snprintf(out + k, cap - k, "%s%s.%s=", i ? " " : "", uvw_var_namespace(var), uvw_var_name(var));
    if (k >= cap) break;
    if (v == NULL) {
      k += (size_t)snprintf(out + k, cap - k, "RESET");
    } else if (uvw_value_kind(v) == UVW_VALUE_STRING) {
      k += (size_t)snprintf(out + k, cap - k, "s:%s", uvw_value_as_string(v));
    } else if (uvw_value_kind(v) == UVW_VALUE_INT) {
      k += (size_t)snprintf(out + k, cap - k, "i:%lld", (long long)uvw_value_as_int(v));
    } else if (uvw_value_kind(v) == UVW_VALUE_BYTES) {
      size_t n = uvw_value_len(v);
      const unsigned char *p = uvw_value_data(v);
      k += (size_t)snprintf(out + k, cap - k, "b:");
      for (size_t j = 0; j < n && k + 3 < cap; j++) k += (size_t)snprintf(out + k, cap - k, "%02x", p[j]);
    } else if (uvw_value_kind(v) == UVW_VALUE_NIL) {
      k += (size_t)snprintf(out + k, cap - k, "nil");
    } else {
      k += (size_t)snprintf(out + k, cap - k, "kind%d", (int)uvw_value_kind(v));
    }
    if (k >= cap) break;
  }
  uvw_manifest_free(m);
}

#endif
