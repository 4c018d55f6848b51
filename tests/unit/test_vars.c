/* Variables: identity, registry, the get ladder, stubs and policy
 * (docs/testing.md rows 1, 4, 7). */
#include <criterion/criterion.h>
#include <stdio.h>

#include "testutil.h"
#include "var.h"

/* Row 1: the ladder on an unarmed, then an armed context. */
static void check_ladder(uvw_var_t *no_default, uvw_var_t *with_default, uvw_value_t *dflt) {
  uvw_value_t *out = NULL, *fallback = uvw_value_int(7);
  cr_assert_eq(uvw_get(no_default, &out), UVW_ELOOKUP);
  const uvw_error_t *e = uvw_last_error();
  cr_assert_eq(uvw_error_kind(e), UVW_KIND_LOOKUP_ERROR);
  cr_assert_str_eq(uvw_error_field(e, "name"), uvw_var_name(no_default));
  cr_assert_eq(uvw_get_or(no_default, fallback, &out), 0);
  cr_assert_eq(out, fallback);
  out = (uvw_value_t *)1;
  cr_assert_eq(uvw_get_or(no_default, NULL, &out), 0, "a NULL fallback is a real fallback");
  cr_assert_null(out);
  cr_assert_eq(uvw_get(with_default, &out), 0);
  cr_assert_eq(out, dflt);
  cr_assert_eq(uvw_get_or(with_default, fallback, &out), 0);
  cr_assert_eq(out, fallback, "the fallback beats the default");
  uvw_value_unref(fallback);
}

static uvw_var_t *ladder_a, *ladder_b, *arming;
static uvw_value_t *ladder_default;

static void ladder_body(void *arg) {
  (void)arg;
  cr_assert_not(uvw_context_is_armed(uvw_context_current()));
  check_ladder(ladder_a, ladder_b, ladder_default);
  cr_assert_not(uvw_context_is_armed(uvw_context_current()), "get never arms");
  uvw_value_t *one = uvw_value_int(1);
  cr_assert_eq(uvw_set(arming, one, NULL), 0);
  uvw_value_unref(one);
  cr_assert(uvw_context_is_armed(uvw_context_current()));
  check_ladder(ladder_a, ladder_b, ladder_default);
}

Test(vars, get_walks_fallback_default_lookup_error_unarmed_then_armed) {
  ladder_default = uvw_value_cstring("dflt");
  ladder_a = tu_var("a", NULL);
  ladder_b = tu_var("b", ladder_default);
  arming = tu_var("arming", NULL);
  uvw_context_t *ctx = uvw_context_new();
  cr_assert_eq(uvw_context_run(ctx, ladder_body, NULL), 0);
  uvw_context_unref(ctx);
  uvw_value_unref(ladder_default);
}

Test(vars, bound_value_beats_fallback_and_default) {
  uvw_value_t *dflt = uvw_value_int(1), *val = uvw_value_int(2), *out;
  uvw_var_t *v = tu_var("v", dflt);
  uvw_context_t *ctx = uvw_context_new();
  cr_assert_eq(uvw_context_enter(ctx), 0);
  cr_assert_eq(uvw_set(v, val, NULL), 0);
  cr_assert_eq(uvw_get_or(v, NULL, &out), 0);
  cr_assert_eq(uvw_value_as_int(out), 2);
  cr_assert_eq(uvw_context_exit(ctx), 0);
  uvw_context_unref(ctx);
  uvw_value_unref(dflt);
  uvw_value_unref(val);
}

/* Row 4. */
Test(vars, second_declaration_collides_even_with_equal_default) {
  const char *ns = tu_namespace();
  uvw_value_t *d1 = uvw_value_int(5), *d2 = uvw_value_int(5);
  uvw_var_t *a, *b = NULL;
  cr_assert_eq(uvw_var_declare(ns, "dup", d1, &a), 0);
  cr_assert_eq(uvw_var_declare(ns, "dup", d2, &b), UVW_ECOLLISION);
  cr_assert_null(b, "out untouched on failure");
  const uvw_error_t *e = uvw_last_error();
  cr_assert_eq(uvw_error_kind(e), UVW_KIND_CONTEXT_VAR_COLLISION);
  cr_assert(uvw_error_kind_is(uvw_error_kind(e), UVW_KIND_WOOL_ERROR));
  cr_assert_str_eq(uvw_error_field(e, "namespace"), ns);
  cr_assert_eq(uvw_var_find(ns, "dup"), a);
  uvw_value_unref(d1);
  uvw_value_unref(d2);
}

Test(vars, same_name_in_two_namespaces_is_two_variables) {
  char ns1[32], ns2[32];
  snprintf(ns1, sizeof ns1, "%s", tu_namespace());
  snprintf(ns2, sizeof ns2, "%s", tu_namespace());
  uvw_var_t *a, *b;
  cr_assert_eq(uvw_var_declare(ns1, "x", NULL, &a), 0);
  cr_assert_eq(uvw_var_declare(ns2, "x", NULL, &b), 0);
  cr_assert_neq(a, b);
  uvw_value_t *v = uvw_value_int(1), *out;
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  uvw_set(a, v, NULL);
  cr_assert_eq(uvw_get(b, &out), UVW_ELOOKUP, "binding one does not bind the other");
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
  uvw_value_unref(v);
}

Test(vars, empty_or_null_names_are_rejected) {
  uvw_var_t *v = NULL;
  cr_assert_eq(uvw_var_declare("", "x", NULL, &v), UVW_EINVAL);
  cr_assert_eq(uvw_var_declare("ns", "", NULL, &v), UVW_EINVAL);
  cr_assert_eq(uvw_var_declare(NULL, "x", NULL, &v), UVW_EINVAL);
  cr_assert_eq(uvw_var_declare("ns", NULL, NULL, &v), UVW_EINVAL);
  cr_assert_eq(uvw_var_declare(tu_namespace(), "x", uvw_value_missing(), &v), UVW_EINVAL);
  cr_assert_null(v);
  cr_assert_eq(uvw_error_kind(uvw_last_error()), UVW_KIND_VALUE_ERROR);
}

/* Row 7: a stub made from wire data is taken over by the declaration. */
Test(vars, declaration_takes_a_stub_over_in_place) {
  const char *ns = tu_namespace();
  uvw_var_t *stub, *again;
  cr_assert_eq(uvw__var_stub(ns, "remote", &stub), 0);
  cr_assert(uvw_var_is_stub(stub));
  cr_assert_eq(uvw__var_stub(ns, "remote", &again), 0);
  cr_assert_eq(again, stub, "one stub per key");
  size_t stubs = uvw__var_stub_count();

  uvw_value_t *wire = uvw_value_cstring("from-wire"), *out;
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  cr_assert_eq(uvw_set(stub, wire, NULL), 0);
  uvw_context_exit(ctx);

  uvw_value_t *dflt = uvw_value_cstring("declared-default");
  uvw_var_t *declared;
  cr_assert_eq(uvw_var_declare(ns, "remote", dflt, &declared), 0);
  cr_assert_eq(declared, stub, "same identity");
  cr_assert_not(uvw_var_is_stub(declared));
  cr_assert_eq(uvw__var_stub_count(), stubs - 1);
  cr_assert_eq(uvw_var_default(declared), dflt, "explicit default wins");
  uvw_context_enter(ctx);
  cr_assert_eq(uvw_get(declared, &out), 0);
  cr_assert_str_eq(uvw_value_as_string(out), "from-wire", "values already bound stay visible");
  uvw_context_exit(ctx);
  cr_assert_eq(uvw_var_declare(ns, "remote", NULL, &declared), UVW_ECOLLISION, "a declared key collides");
  uvw_context_unref(ctx);
  uvw_value_unref(wire);
  uvw_value_unref(dflt);
}

Test(vars, policy_defaults_to_everywhere_and_is_queryable) {
  uvw_var_t *v = tu_var("p", NULL);
  cr_assert_eq(uvw_var_policy(v), UVW_PROPAGATE_ALL);
  cr_assert_eq(uvw_var_set_policy(v, UVW_PROPAGATE_WIRE), 0);
  cr_assert_eq(uvw_var_policy(v), UVW_PROPAGATE_WIRE);
  cr_assert_eq(uvw_var_set_policy(v, 0x80), UVW_EINVAL);
  cr_assert_eq(uvw_var_policy(v), UVW_PROPAGATE_WIRE, "unchanged after a bad call");
}
