/* Values: kinds, accessors, sentinels, refcounting and opaque release. */
#include <criterion/criterion.h>
#include <string.h>

#include "testutil.h"

Test(values, scalars_keep_kind_and_payload) {
  uvw_value_t *i = uvw_value_int(-42), *d = uvw_value_double(2.5), *s = uvw_value_cstring("héllo");
  cr_assert_eq(uvw_value_kind(i), UVW_VALUE_INT);
  cr_assert_eq(uvw_value_as_int(i), -42);
  cr_assert_eq(uvw_value_kind(d), UVW_VALUE_DOUBLE);
  cr_assert_eq(uvw_value_as_double(d), 2.5);
  cr_assert_eq(uvw_value_kind(s), UVW_VALUE_STRING);
  cr_assert_str_eq(uvw_value_as_string(s), "héllo");
  cr_assert_eq(uvw_value_len(s), strlen("héllo"));
  cr_assert_eq(uvw_value_as_int(s), 0, "accessor of the wrong kind gives 0");
  cr_assert_null(uvw_value_as_string(i));
  uvw_value_unref(i);
  uvw_value_unref(d);
  uvw_value_unref(s);
}

Test(values, bytes_may_hold_nul_and_compare_structurally) {
  const char raw[] = {'a', 0, 'b'};
  uvw_value_t *a = uvw_value_bytes(raw, 3), *b = uvw_value_bytes(raw, 3), *c = uvw_value_bytes(raw, 2);
  cr_assert_eq(uvw_value_len(a), 3);
  cr_assert_eq(memcmp(uvw_value_data(a), raw, 3), 0);
  cr_assert(uvw_value_equal(a, b));
  cr_assert_not(uvw_value_equal(a, c));
  uvw_value_t *s = uvw_value_string(raw, 3);
  cr_assert_not(uvw_value_equal(a, s), "bytes and string of equal content are different kinds");
  uvw_value_unref(a);
  uvw_value_unref(b);
  uvw_value_unref(c);
  uvw_value_unref(s);
}

Test(values, singletons_and_sentinels_are_distinct) {
  cr_assert_eq(uvw_value_kind(uvw_value_missing()), UVW_VALUE_MISSING);
  cr_assert_eq(uvw_value_kind(uvw_value_undefined()), UVW_VALUE_UNDEFINED);
  cr_assert_neq(uvw_value_missing(), uvw_value_undefined());
  cr_assert_neq(uvw_value_nil(), uvw_value_missing());
  cr_assert_eq(uvw_value_bool(7), uvw_value_bool(1));
  cr_assert_eq(uvw_value_as_bool(uvw_value_bool(1)), 1);
  cr_assert_eq(uvw_value_as_bool(uvw_value_bool(0)), 0);
  uvw_value_unref(uvw_value_nil()); /* immortal: unref is harmless */
  cr_assert_eq(uvw_value_kind(uvw_value_nil()), UVW_VALUE_NIL);
}

Test(values, opaque_released_once_when_last_reference_goes) {
  size_t before = tu_released();
  uvw_value_t *v = tu_counted_value();
  cr_assert_eq(uvw_value_opaque_ops(v), &tu_counted_ops);
  uvw_value_ref(v);
  uvw_value_unref(v);
  cr_assert_eq(tu_released(), before, "still referenced");
  uvw_value_unref(v);
  cr_assert_eq(tu_released(), before + 1);
}

Test(values, bad_arguments_are_errors_not_crashes) {
  cr_assert_null(uvw_value_bytes(NULL, 4));
  cr_assert_eq(uvw_error_code(uvw_last_error()), UVW_EINVAL);
  cr_assert_null(uvw_value_cstring(NULL));
  cr_assert_null(uvw_value_opaque((void *)1, NULL));
  cr_assert_eq(uvw_error_kind(uvw_last_error()), UVW_KIND_VALUE_ERROR);
  uvw_value_t *empty = uvw_value_bytes(NULL, 0);
  cr_assert_not_null(empty);
  cr_assert_eq(uvw_value_len(empty), 0);
  uvw_value_unref(empty);
}

Test(values, opaque_ownership_honoured_on_allocation_failure) {
  size_t before = tu_released();
  tu_fail_alloc_after(1);
  uvw_value_t *v = uvw_value_opaque(NULL, &tu_counted_ops);
  tu_restore_alloc();
  cr_assert_null(v);
  cr_assert_eq(tu_released(), before + 1, "the pointer handed over was released");
  cr_assert_eq(uvw_error_code(uvw_last_error()), UVW_ENOMEM);
}
