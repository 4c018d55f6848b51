/* The exception tree: one Ruby class per uvwool error kind, with the core's
 * parents (WoolError < StandardError). A raised exception carries the detail
 * record of the failed call: @code ("UVW_ECONTENTION"), @errno (the negative
 * code) and @fields (a frozen Hash of the structured fields, String => String);
 * lib/uvwool.rb defines the readers. */
#include "uvwool_ruby.h"

static VALUE classes[UVW_KIND__COUNT];
static ID id_code, id_errno, id_fields;

void uvwr_init_errors(VALUE mod) {
  id_code = rb_intern("@code");
  id_errno = rb_intern("@errno");
  id_fields = rb_intern("@fields");
  /* Parents come first in the kind list, so each parent class exists. */
  for (int k = UVW_KIND_WOOL_ERROR; k < UVW_KIND_WOOL_WARNING; k++) {
    uvw_error_kind_t parent = uvw_error_kind_parent((uvw_error_kind_t)k);
    VALUE super = parent == UVW_KIND_NONE ? rb_eStandardError : classes[parent];
    classes[k] = rb_define_class_under(mod, uvw_error_kind_name((uvw_error_kind_t)k), super);
    rb_gc_register_mark_object(classes[k]);
  }
}

VALUE uvwr_error_new(const uvw_error_t *e, int code) {
  uvw_error_kind_t kind = e ? uvw_error_kind(e) : UVW_KIND_WOOL_ERROR;
  if (kind <= UVW_KIND_NONE || kind >= UVW_KIND_WOOL_WARNING) kind = UVW_KIND_WOOL_ERROR;
  VALUE fields = rb_hash_new();
  size_t n = e ? uvw_error_field_count(e) : 0;
  for (size_t i = 0; i < n; i++)
    rb_hash_aset(fields, rb_utf8_str_new_cstr(uvw_error_field_name(e, i)),
                 rb_utf8_str_new_cstr(uvw_error_field_value(e, i)));
  rb_obj_freeze(fields);
  VALUE msg = rb_utf8_str_new_cstr(e ? uvw_error_message(e) : uvw_strerror(code));
  VALUE exc = rb_exc_new_str(classes[kind], msg);
  rb_ivar_set(exc, id_code, rb_usascii_str_new_cstr(uvw_err_name(code)));
  rb_ivar_set(exc, id_errno, INT2NUM(code));
  rb_ivar_set(exc, id_fields, fields);
  return exc;
}

void uvwr_raise(int code) {
  if (code == UVW_ENOMEM) rb_memerror();
  /* Read the record at once: the next failing uvwool call replaces it. */
  rb_exc_raise(uvwr_error_new(uvw_last_error(), code));
}
