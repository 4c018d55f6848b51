/* Ruby objects <-> uvwool values.
 * The wire kinds map both ways with no loss: nil, true/false, Integer
 * (int64), Float, String (ASCII-8BIT strings are bytes, every other string
 * becomes UTF-8). Any other object is an opaque value holding the object:
 * it never crosses the wire (its type has no codec) and the GC sees it
 * through the registry below for as long as any uvwool value holds it. */
#include <pthread.h>
#include <stdlib.h>

#include <ruby/encoding.h>

#include "uvwool_ruby.h"

VALUE uvwr_missing;

/* One box per opaque value, in a list the registry object marks. The core
 * runs `release` on whichever thread drops the last reference, perhaps
 * without the GVL: the list has its own lock and release calls no Ruby API. */
typedef struct box_s {
  VALUE obj;
  struct box_s *prev, *next;
} box_t;

static box_t boxes = {Qnil, &boxes, &boxes};
static size_t held;
static pthread_mutex_t boxes_lock = PTHREAD_MUTEX_INITIALIZER;

static void box_release(void *ptr) {
  box_t *b = ptr;
  pthread_mutex_lock(&boxes_lock);
  b->prev->next = b->next;
  b->next->prev = b->prev;
  held--;
  pthread_mutex_unlock(&boxes_lock);
  free(b);
}

static const uvw_opaque_ops_t ruby_ops = {"ruby", box_release};

/* rb_gc_mark pins: a held object never moves under GC.compact, so the box's
 * VALUE stays right. The registry is not write-barrier protected, so even a
 * minor GC scans it (an old registry still marks young objects). */
static void registry_mark(void *unused) {
  (void)unused;
  pthread_mutex_lock(&boxes_lock);
  for (box_t *b = boxes.next; b != &boxes; b = b->next) rb_gc_mark(b->obj);
  pthread_mutex_unlock(&boxes_lock);
}

static const rb_data_type_t registry_type = {
    .wrap_struct_name = "uvwool/held_objects", .function = {.dmark = registry_mark}};

size_t uvwr_held_count(void) {
  pthread_mutex_lock(&boxes_lock);
  size_t n = held;
  pthread_mutex_unlock(&boxes_lock);
  return n;
}

static uvw_value_t *checked(uvw_value_t *v) {
  if (v == NULL) rb_memerror();
  return v;
}

static uvw_value_t *opaque(VALUE obj) {
  box_t *b = malloc(sizeof(*b));
  if (b == NULL) rb_memerror();
  b->obj = obj;
  pthread_mutex_lock(&boxes_lock);
  b->next = &boxes;
  b->prev = boxes.prev;
  boxes.prev->next = b;
  boxes.prev = b;
  held++;
  pthread_mutex_unlock(&boxes_lock);
  return checked(uvw_value_opaque(b, &ruby_ops)); /* releases b on failure */
}

static uvw_value_t *integer(VALUE obj) {
  /* Only Bignums get here: compare before converting, for a clear message. */
  if (RTEST(rb_funcall(obj, '>', 1, LL2NUM(INT64_MAX))) || RTEST(rb_funcall(obj, '<', 1, LL2NUM(INT64_MIN))))
    rb_raise(rb_eRangeError, "uvwool: Integer %" PRIsVALUE " is outside int64 (-2**63 .. 2**63-1)", obj);
  return checked(uvw_value_int((int64_t)NUM2LL(obj)));
}

static uvw_value_t *string(VALUE obj) {
  rb_encoding *enc = rb_enc_get(obj);
  if (enc == rb_ascii8bit_encoding())
    return checked(uvw_value_bytes(RSTRING_PTR(obj), (size_t)RSTRING_LEN(obj)));
  if (rb_enc_str_coderange(obj) == ENC_CODERANGE_BROKEN)
    rb_raise(rb_eEncodingError, "uvwool: the String is not valid %s", rb_enc_name(enc));
  if (enc != rb_utf8_encoding() && !rb_enc_str_asciionly_p(obj))
    obj = rb_str_export_to_enc(obj, rb_utf8_encoding()); /* raises when it cannot */
  return checked(uvw_value_string(RSTRING_PTR(obj), (size_t)RSTRING_LEN(obj)));
}

uvw_value_t *uvwr_to_value(VALUE obj) {
  switch (rb_type(obj)) {
  case T_NIL:
    return checked(uvw_value_nil());
  case T_TRUE:
    return checked(uvw_value_bool(1));
  case T_FALSE:
    return checked(uvw_value_bool(0));
  case T_FIXNUM:
    return checked(uvw_value_int((int64_t)FIX2LONG(obj)));
  case T_BIGNUM:
    return integer(obj);
  case T_FLOAT:
    return checked(uvw_value_double(RFLOAT_VALUE(obj)));
  case T_STRING:
    return string(obj);
  default:
    return opaque(obj);
  }
}

VALUE uvwr_from_value(const uvw_value_t *v) {
  if (v == NULL) return Qnil;
  switch (uvw_value_kind(v)) {
  case UVW_VALUE_MISSING:
    return uvwr_missing;
  case UVW_VALUE_NIL:
  case UVW_VALUE_UNDEFINED:
    return Qnil;
  case UVW_VALUE_BOOL:
    return uvw_value_as_bool(v) ? Qtrue : Qfalse;
  case UVW_VALUE_INT:
    return LL2NUM(uvw_value_as_int(v));
  case UVW_VALUE_DOUBLE:
    return DBL2NUM(uvw_value_as_double(v));
  case UVW_VALUE_STRING:
    return rb_utf8_str_new((const char *)uvw_value_data(v), (long)uvw_value_len(v));
  case UVW_VALUE_BYTES:
    return rb_str_new((const char *)uvw_value_data(v), (long)uvw_value_len(v));
  case UVW_VALUE_OPAQUE:
    if (uvw_value_opaque_ops(v) == &ruby_ops) return ((box_t *)uvw_value_as_opaque(v))->obj;
    rb_raise(rb_eTypeError, "uvwool: an opaque value of type \"%s\" has no Ruby form",
             uvw_value_opaque_ops(v)->type_name);
  }
  rb_raise(rb_eTypeError, "uvwool: value kind %d has no Ruby form", (int)uvw_value_kind(v));
}

static VALUE missing_inspect(VALUE self) {
  (void)self;
  return rb_str_new_cstr("Uvwool::MISSING");
}

static VALUE held_objects(VALUE self) {
  (void)self;
  return SIZET2NUM(uvwr_held_count());
}

void uvwr_init_values(VALUE mod) {
  /* Not NULL: the GC calls dmark only for a non-NULL data pointer. */
  VALUE registry = TypedData_Wrap_Struct(0, &registry_type, &boxes);
  rb_gc_register_mark_object(registry);
  uvwr_missing = rb_obj_alloc(rb_cObject);
  rb_define_singleton_method(uvwr_missing, "inspect", missing_inspect, 0);
  rb_define_singleton_method(uvwr_missing, "to_s", missing_inspect, 0);
  rb_obj_freeze(uvwr_missing);
  rb_define_const(mod, "MISSING", uvwr_missing);
  /* Uvwool::Core.held_objects: how many Ruby objects uvwool values hold. */
  rb_define_module_function(rb_const_get(mod, rb_intern("Core")), "held_objects", held_objects, 0);
}
