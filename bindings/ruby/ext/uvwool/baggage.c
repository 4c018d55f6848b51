/* The W3C baggage header of the current context (docs/wire.md, "W3C
 * baggage"): Uvwool::Core.baggage_encode and .baggage_mount, under the
 * Ruby carrier and OpenTelemetry propagator of lib/uvwool/otel.rb. */
#include "uvwool_ruby.h"

/* The header value for the current context ("" when nothing is bound). */
static VALUE baggage_encode(VALUE self) {
  (void)self;
  char *out = NULL;
  int rc = uvw_baggage_encode(NULL, &out);
  if (rc < 0) uvwr_raise_flushed(rc);
  VALUE header = rb_utf8_str_new_cstr(out);
  uvw_free(out);
  uvwr_warnings_flush();
  return header;
}

/* Bind the members of header that name our variables (the others kept for
 * re-encoding) in the current context. On error nothing changes. */
static VALUE baggage_mount(VALUE self, VALUE header) {
  (void)self;
  StringValue(header);
  uvw_manifest_t *m = NULL;
  int rc = uvw_baggage_decode(RSTRING_PTR(header), (size_t)RSTRING_LEN(header), &m);
  if (rc == 0) rc = uvw_manifest_mount(m);
  uvw_manifest_free(m); /* fails no call: the error record stays */
  if (rc < 0) uvwr_raise_flushed(rc);
  uvwr_warnings_flush();
  return Qnil;
}

void uvwr_init_baggage(VALUE mod) {
  VALUE core = rb_const_get(mod, rb_intern("Core"));
  rb_define_module_function(core, "baggage_encode", baggage_encode, 0);
  rb_define_module_function(core, "baggage_mount", baggage_mount, 1);
}
