/* Uvwool::ContextVar and Uvwool::Token, hand-written: they are the hot
 * path (get/set/reset), and SWIG's pointer unwrapping (a type lookup by
 * name on every call) costs several times the whole uvw_get. Declaration
 * and everything else go through the SWIG layer (Uvwool::Core). */
#include "uvwool_ruby.h"

static VALUE cContextVar, cToken;

/* ---- Uvwool::ContextVar ------------------------------------------------------- */

/* Variables live for the process: nothing to free but the struct. */
static const rb_data_type_t var_type = {
    .wrap_struct_name = "Uvwool::ContextVar",
    .function = {.dfree = RUBY_TYPED_DEFAULT_FREE},
    .flags = RUBY_TYPED_FREE_IMMEDIATELY | RUBY_TYPED_WB_PROTECTED};

static VALUE var_alloc(VALUE klass) {
  uvw_var_t **slot;
  return TypedData_Make_Struct(klass, uvw_var_t *, &var_type, slot);
}

static uvw_var_t *var_of(VALUE self) {
  uvw_var_t *var = *(uvw_var_t **)rb_check_typeddata(self, &var_type);
  if (var == NULL) rb_raise(rb_eTypeError, "uvwool: ContextVar not initialized");
  return var;
}

/* __declare(namespace, name, default or Uvwool::MISSING), from initialize. */
static VALUE var_declare(VALUE self, VALUE ns, VALUE name, VALUE dflt) {
  uvw_var_t **slot = rb_check_typeddata(self, &var_type);
  if (*slot) rb_raise(rb_eTypeError, "uvwool: ContextVar already initialized");
  const char *n = StringValueCStr(ns), *m = StringValueCStr(name);
  uvw_value_t *d = dflt == uvwr_missing ? NULL : uvwr_to_value(dflt);
  int rc = uvw_var_declare(n, m, d, slot);
  uvw_value_unref(d);
  if (rc < 0) uvwr_raise(rc);
  return self;
}

/* get -> value, default or LookupError; get(fallback) -> value or fallback
 * (the fallback wins over the default, as in contextvars). */
static VALUE var_get(int argc, VALUE *argv, VALUE self) {
  uvw_var_t *var = var_of(self);
  uvw_value_t *out = NULL;
  int rc;
  rb_check_arity(argc, 0, 1);
  if (argc == 0) {
    rc = uvw_get(var, &out);
  } else {
    rc = uvw_get_or(var, NULL, &out); /* NULL: unbound, without a conversion */
    if (rc == 0 && out == NULL) return argv[0];
  }
  if (rc < 0) uvwr_raise(rc);
  return uvwr_from_value(out);
}

/* The propagation flags (Uvwool::PROPAGATE_*): where the binding crosses. */
static VALUE var_policy(VALUE self) { return UINT2NUM(uvw_var_policy(var_of(self))); }

static VALUE var_set_policy(VALUE self, VALUE flags) {
  int rc = uvw_var_set_policy(var_of(self), NUM2UINT(flags));
  if (rc < 0) uvwr_raise(rc);
  return flags;
}

/* ---- Uvwool::Token --------------------------------------------------------------- */

typedef struct {
  uvw_token_t *token;
  VALUE var;
} token_t;

static void token_mark(void *p) { rb_gc_mark(((token_t *)p)->var); }

static void token_free(void *p) {
  token_t *t = p;
  uvw_token_free(t->token);
  xfree(t);
}

static const rb_data_type_t token_type = {
    .wrap_struct_name = "Uvwool::Token",
    .function = {.dmark = token_mark, .dfree = token_free},
    .flags = RUBY_TYPED_FREE_IMMEDIATELY};

static VALUE var_set(VALUE self, VALUE value) {
  uvw_var_t *var = var_of(self);
  token_t *t;
  /* The Token first: nothing can fail between the set and its token. */
  VALUE obj = TypedData_Make_Struct(cToken, token_t, &token_type, t);
  t->var = self;
  uvw_value_t *v = uvwr_to_value(value);
  int rc = uvw_set(var, v, &t->token);
  uvw_value_unref(v);
  if (rc < 0) uvwr_raise(rc);
  return obj;
}

static VALUE var_reset(VALUE self, VALUE token) {
  uvw_var_t *var = var_of(self);
  if (!rb_typeddata_is_kind_of(token, &token_type))
    rb_raise(rb_eTypeError, "uvwool: ContextVar#reset expects a Uvwool::Token, got %" PRIsVALUE,
             rb_obj_class(token));
  int rc = uvw_reset(var, ((token_t *)RTYPEDDATA_DATA(token))->token);
  if (rc < 0) uvwr_raise(rc);
  return Qnil;
}

static token_t *token_of(VALUE self) { return rb_check_typeddata(self, &token_type); }

static VALUE token_var(VALUE self) { return token_of(self)->var; }

/* The value before the set, or Uvwool::MISSING when there was none. */
static VALUE token_old_value(VALUE self) { return uvwr_from_value(uvw_token_old_value(token_of(self)->token)); }

static VALUE token_used(VALUE self) { return uvw_token_used(token_of(self)->token) ? Qtrue : Qfalse; }

void uvwr_init_vars(VALUE mod) {
  cContextVar = rb_define_class_under(mod, "ContextVar", rb_cObject);
  rb_define_alloc_func(cContextVar, var_alloc);
  rb_define_private_method(cContextVar, "__declare", var_declare, 3);
  rb_define_method(cContextVar, "get", var_get, -1);
  rb_define_method(cContextVar, "set", var_set, 1);
  rb_define_method(cContextVar, "reset", var_reset, 1);
  rb_define_method(cContextVar, "policy", var_policy, 0);
  rb_define_method(cContextVar, "policy=", var_set_policy, 1);
  rb_define_const(mod, "PROPAGATE_FORK", UINT2NUM(UVW_PROPAGATE_FORK));
  rb_define_const(mod, "PROPAGATE_THREAD", UINT2NUM(UVW_PROPAGATE_THREAD));
  rb_define_const(mod, "PROPAGATE_WIRE", UINT2NUM(UVW_PROPAGATE_WIRE));
  rb_define_const(mod, "PROPAGATE_BAGGAGE", UINT2NUM(UVW_PROPAGATE_BAGGAGE));
  rb_define_const(mod, "PROPAGATE_ALL", UINT2NUM(UVW_PROPAGATE_ALL));

  cToken = rb_define_class_under(mod, "Token", rb_cObject);
  rb_undef_alloc_func(cToken); /* only ContextVar#set makes tokens */
  rb_define_method(cToken, "var", token_var, 0);
  rb_define_method(cToken, "old_value", token_old_value, 0);
  rb_define_method(cToken, "used?", token_used, 0);
}
