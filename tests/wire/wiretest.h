/* Helpers for the wire tests: build and read manifests with protobuf-c
 * directly (so expectations never come from the code under test), and
 * capture warnings. */
#ifndef UVWOOL_WIRETEST_H
#define UVWOOL_WIRETEST_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "uvwool.h"
#include "uvwool.pb-c.h"

/* ---- warnings ---- */
#define WT_MAX_WARNINGS 64
static uvw_error_t *wt_warnings[WT_MAX_WARNINGS];
static size_t wt_nwarnings;
static void wt_sink(const uvw_error_t *w, void *arg) {
  (void)arg;
  if (wt_nwarnings < WT_MAX_WARNINGS) wt_warnings[wt_nwarnings] = uvw_error_ref(w);
  wt_nwarnings++;
}
static inline void wt_capture(void) {
  for (size_t i = 0; i < wt_nwarnings && i < WT_MAX_WARNINGS; i++) uvw_error_unref(wt_warnings[i]);
  wt_nwarnings = 0;
  uvw_set_warning_sink(wt_sink, NULL);
}
static inline void wt_release(void) {
  for (size_t i = 0; i < wt_nwarnings && i < WT_MAX_WARNINGS; i++) uvw_error_unref(wt_warnings[i]);
  wt_nwarnings = 0;
  uvw_set_warning_sink(NULL, NULL);
}

/* ---- building protobuf by hand ---- */
#define WT_MAX_ENTRIES 40
typedef struct {
  Uvwool__ChainManifest m;
  Uvwool__Entry entries[WT_MAX_ENTRIES];
  Uvwool__Entry *ptrs[WT_MAX_ENTRIES];
  Uvwool__Value values[WT_MAX_ENTRIES];
  Uvwool__Opaque opaques[WT_MAX_ENTRIES];
} wt_manifest_t;

static inline void wt_init(wt_manifest_t *w, const char *id) {
  memset(w, 0, sizeof(*w));
  uvwool__chain_manifest__init(&w->m);
  w->m.id = (char *)id;
  w->m.entries = w->ptrs;
}
/* Adds an entry; returns its value slot (NULL-kind until the caller sets it). */
static inline Uvwool__Value *wt_entry(wt_manifest_t *w, const char *ns, const char *name, int with_value) {
  cr_assert_lt(w->m.n_entries, WT_MAX_ENTRIES, "wt_manifest_t holds %d entries", WT_MAX_ENTRIES);
  size_t i = w->m.n_entries++;
  uvwool__entry__init(&w->entries[i]);
  w->entries[i].namespace_ = (char *)ns;
  w->entries[i].name = (char *)name;
  uvwool__value__init(&w->values[i]);
  w->entries[i].value = with_value ? &w->values[i] : NULL;
  w->ptrs[i] = &w->entries[i];
  return &w->values[i];
}
static inline void wt_string(Uvwool__Value *v, const char *s) {
  v->kind_case = UVWOOL__VALUE__KIND_STRING_VALUE;
  v->string_value.data = (uint8_t *)s;
  v->string_value.len = strlen(s);
}
static inline void wt_int(Uvwool__Value *v, int64_t i) {
  v->kind_case = UVWOOL__VALUE__KIND_INT_VALUE;
  v->int_value = i;
}
/* malloc'd packed bytes */
static inline uint8_t *wt_pack(const ProtobufCMessage *m, size_t *len) {
  *len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(*len ? *len : 1);
  protobuf_c_message_pack(m, buf);
  return buf;
}
static inline uint8_t *wt_pack_manifest(wt_manifest_t *w, size_t *len) { return wt_pack(&w->m.base, len); }

/* Decode with protobuf-c directly (NULL allocator: plain malloc). */
static inline Uvwool__ChainManifest *wt_unpack(const void *data, size_t len) {
  Uvwool__ChainManifest *m = uvwool__chain_manifest__unpack(NULL, len, data);
  cr_assert_not_null(m, "protobuf-c itself must parse what uvwool encoded");
  return m;
}

/* ---- contexts ---- */
/* Runs in a fresh context entered on this thread; returns it. */
static inline uvw_context_t *wt_enter_new(void) {
  uvw_context_t *c = uvw_context_new();
  cr_assert_not_null(c);
  cr_assert_eq(uvw_context_enter(c), 0);
  return c;
}
static inline void wt_leave(uvw_context_t *c) {
  cr_assert_eq(uvw_context_exit(c), 0);
  uvw_context_unref(c);
}
static inline uvw_var_t *wt_declare(const char *ns, const char *name) {
  uvw_var_t *v;
  cr_assert_eq(uvw_var_declare(ns, name, NULL, &v), 0, "declare (%s, %s)", ns, name);
  return v;
}
static inline void wt_set(uvw_var_t *v, uvw_value_t *val) {
  cr_assert_eq(uvw_set(v, val, NULL), 0, "set: %s", uvw_last_error() ? uvw_error_message(uvw_last_error()) : "");
  uvw_value_unref(val);
}
static inline void wt_set_reset(uvw_var_t *v) { /* leave v as a pending reset */
  uvw_token_t *t;
  uvw_value_t *x = uvw_value_int(0);
  cr_assert_eq(uvw_set(v, x, &t), 0);
  cr_assert_eq(uvw_reset(v, t), 0);
  uvw_token_free(t);
  uvw_value_unref(x);
}

#endif
