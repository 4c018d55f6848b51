/* Errors and warnings: the class tree, detail records, the text round trip
 * (row 16), the warning sink and strict mode. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "testutil.h"

Test(errors, every_class_sits_under_one_of_two_roots) {
  int errors = 0, warnings = 0;
  for (int k = UVW_KIND_NONE + 1; k < UVW_KIND__COUNT; k++) {
    int under_error = uvw_error_kind_is(k, UVW_KIND_WOOL_ERROR);
    int under_warning = uvw_error_kind_is(k, UVW_KIND_WOOL_WARNING);
    cr_assert(under_error != under_warning, "%s under exactly one root", uvw_error_kind_name(k));
    errors += under_error;
    warnings += under_warning;
    cr_assert_eq((int)uvw_error_kind_from_name(uvw_error_kind_name(k)), k, "name round trip");
  }
  cr_assert_gt(errors, 5);
  cr_assert_eq(warnings, 2);
  cr_assert(uvw_error_kind_is(UVW_KIND_CHAIN_SERIALIZATION_ERROR, UVW_KIND_SERIALIZATION_ERROR));
  cr_assert_eq(uvw_error_kind_parent(UVW_KIND_SERIALIZATION_WARNING), UVW_KIND_WOOL_WARNING);
  cr_assert_eq(uvw_error_kind_parent(UVW_KIND_WOOL_ERROR), UVW_KIND_NONE);
  cr_assert_eq(uvw_error_kind_from_name("NoSuchError"), UVW_KIND_NONE);
}

Test(errors, codes_have_names_and_messages) {
  cr_assert_str_eq(uvw_err_name(UVW_ECONTENTION), "UVW_ECONTENTION");
  cr_assert_str_eq(uvw_err_name(12345), "UVW_UNKNOWN");
  cr_assert_str_neq(uvw_strerror(UVW_ELOOKUP), uvw_strerror(12345));
}

/* A ChainContention produced by the real guard, from another thread. */
static void *read_foreign(void *arg) {
  uvw_value_t *out;
  uvw_context_enter(arg);
  uvw_get(uvw_var_find("errors.test", "v"), &out);
  uvw_context_exit(arg);
  return uvw_error_ref(uvw_last_error());
}

static uvw_error_t *real_contention(void) {
  uvw_var_t *v;
  uvw_value_t *a = uvw_value_int(1);
  uvw_var_declare("errors.test", "v", NULL, &v);
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  uvw_set(v, a, NULL);
  uvw_context_exit(ctx);
  pthread_t th;
  void *e;
  pthread_create(&th, NULL, read_foreign, ctx);
  pthread_join(th, &e);
  uvw_context_unref(ctx);
  uvw_value_unref(a);
  return e;
}

static void assert_same_error(const uvw_error_t *a, const uvw_error_t *b) {
  cr_assert_eq(uvw_error_kind(a), uvw_error_kind(b));
  cr_assert_eq(uvw_error_code(a), uvw_error_code(b));
  cr_assert_str_eq(uvw_error_message(a), uvw_error_message(b));
  cr_assert_eq(uvw_error_field_count(a), uvw_error_field_count(b));
  for (size_t i = 0; i < uvw_error_field_count(a); i++) {
    cr_assert_str_eq(uvw_error_field_name(a, i), uvw_error_field_name(b, i));
    cr_assert_str_eq(uvw_error_field_value(a, i), uvw_error_field_value(b, i));
  }
  cr_assert_eq(!uvw_error_cause(a), !uvw_error_cause(b));
  if (uvw_error_cause(a)) assert_same_error(uvw_error_cause(a), uvw_error_cause(b));
  cr_assert_eq(!uvw_error_context(a), !uvw_error_context(b));
  if (uvw_error_context(a)) assert_same_error(uvw_error_context(a), uvw_error_context(b));
  cr_assert_eq(uvw_error_warning_count(a), uvw_error_warning_count(b));
  for (size_t i = 0; i < uvw_error_warning_count(a); i++)
    assert_same_error(uvw_error_warning(a, i), uvw_error_warning(b, i));
}

/* Row 16. */
Test(errors, chain_contention_survives_a_round_trip_with_every_field) {
  uvw_error_t *e = real_contention();
  cr_assert_eq(uvw_error_kind(e), UVW_KIND_CHAIN_CONTENTION);
  const char *fields[] = {"chain_id", "kind", "owner_thread", "offending_thread", "owner_task", "offending_task"};
  for (size_t i = 0; i < 6; i++) cr_assert_not_null(uvw_error_field(e, fields[i]), "%s", fields[i]);
  char *text = uvw_error_serialize(e);
  cr_assert_not_null(text);
  uvw_error_t *back;
  cr_assert_eq(uvw_error_deserialize(text, strlen(text), &back), 0, "%s", text);
  assert_same_error(e, back);
  cr_assert_str_eq(uvw_error_field(back, "kind"), "thread");
  uvw_free(text);
  uvw_error_unref(back);
  uvw_error_unref(e);
}

Test(errors, round_trip_keeps_cause_context_warnings_and_awkward_text) {
  uvw_error_t *e = uvw__error_new(UVW_ECHAINSERIALIZE, UVW_KIND_CHAIN_SERIALIZATION_ERROR,
                                  "two values failed:\n\tone=%%bad%%");
  uvw__error_field(e, "key=with\tseparators", "line1\nline2 100%%");
  uvw__error_field(e, "empty", "%s", "");
  uvw__error_set_cause(e, uvw__error_new(UVW_ESERIALIZE, UVW_KIND_SERIALIZATION_ERROR, "cause"));
  uvw__error_set_context(e, uvw__error_new(UVW_ELOOKUP, UVW_KIND_LOOKUP_ERROR, "%s", ""));
  uvw__error_add_warning(e, uvw__error_new(0, UVW_KIND_SERIALIZATION_WARNING, "w1"));
  uvw__error_add_warning(e, uvw__error_new(0, UVW_KIND_SERIALIZATION_WARNING, "w2"));
  uvw__error_set_cause((uvw_error_t *)uvw_error_cause(e),
                       uvw__error_new(UVW_ENOMEM, UVW_KIND_MEMORY_ERROR, "deep"));
  char *text = uvw_error_serialize(e);
  uvw_error_t *back;
  cr_assert_eq(uvw_error_deserialize(text, strlen(text), &back), 0, "%s", text);
  assert_same_error(e, back);
  cr_assert_str_eq(uvw_error_message(uvw_error_cause(uvw_error_cause(back))), "deep");
  uvw_free(text);
  uvw_error_unref(back);
  uvw_error_unref(e);
}

Test(errors, malformed_text_is_a_clear_error) {
  const char *bad[] = {
      "",                                        /* no record */
      "0\troot\tNoSuchKind\t-1\tm\n",            /* unknown kind */
      "0\troot\tWoolError\tx\tm\n",              /* bad code */
      "1\tcause\tWoolError\t0\tm\n",             /* no root */
      "0\troot\tWoolError\t0\tm\n0\troot\tWoolError\t0\tm\n", /* two roots */
      "0\troot\tWoolError\t0\tm\n2\tcause\tWoolError\t0\tm\n", /* skips a level */
      "0\troot\tWoolError\t0\tm\n1\tsibling\tWoolError\t0\tm\n", /* bad relation */
      "0\troot\tWoolError\t0\tm%zz\n",           /* bad escape */
      "0\troot\tWoolError\t0\tm\tnovalue\n",     /* field without '=' */
      "0\troot\tWoolError\t0\tm",                /* truncated: no end of line */
      "0\troot\tWoolError\n",                    /* too few fields */
      "0\troot\tWoolError\t0\tm\n1\tcause\tWoolError\t0\ta\n1\tcause\tWoolError\t0\tb\n", /* two causes */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    uvw_error_t *out = (uvw_error_t *)0x1;
    cr_assert_eq(uvw_error_deserialize(bad[i], strlen(bad[i]), &out), UVW_EINVAL, "case %zu", i);
    cr_assert_eq(out, (uvw_error_t *)0x1, "case %zu: out untouched", i);
    cr_assert_not_null(strstr(uvw_error_message(uvw_last_error()), "malformed"), "case %zu", i);
  }
}

Test(errors, last_error_is_per_thread_and_clearable) {
  uvw_var_t *v = tu_var("v", NULL);
  uvw_value_t *out;
  uvw_get(v, &out);
  cr_assert_eq(uvw_error_code(uvw_last_error()), UVW_ELOOKUP);
  uvw_clear_error();
  cr_assert_null(uvw_last_error());
}

static int sink_calls;
static uvw_error_kind_t sink_kind;
static char sink_message[64];
static void test_sink(const uvw_error_t *w, void *arg) {
  sink_calls += *(int *)arg;
  sink_kind = uvw_error_kind(w);
  snprintf(sink_message, sizeof sink_message, "%s", uvw_error_message(w));
}

Test(errors, warnings_reach_the_application_sink) {
  int weight = 1;
  uvw_set_warning_sink(test_sink, &weight);
  uvw__warn(uvw__error_new(0, UVW_KIND_SERIALIZATION_WARNING, "value of (%s) dropped", "ns, x"));
  cr_assert_eq(sink_calls, 1);
  cr_assert_eq(sink_kind, UVW_KIND_SERIALIZATION_WARNING);
  cr_assert_str_eq(sink_message, "value of (ns, x) dropped");
  uvw_set_warning_sink(NULL, NULL);
  uvw__warn(uvw__error_new(0, UVW_KIND_SERIALIZATION_WARNING, "to stderr"));
  cr_assert_eq(sink_calls, 1, "the default sink replaced ours");
}

Test(errors, strict_mode_from_environment_then_api) {
  setenv("UVWOOL_STRICT", "1", 1);
  cr_assert_eq(uvw_strict(), 1, "read from the environment at first use");
  uvw_set_strict(0);
  cr_assert_eq(uvw_strict(), 0);
  uvw_set_strict(1);
  cr_assert_eq(uvw_strict(), 1);
}

Test(errors, strict_mode_is_off_by_default) {
  unsetenv("UVWOOL_STRICT");
  cr_assert_eq(uvw_strict(), 0);
}
