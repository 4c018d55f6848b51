/* Uvwool::Core for Ruby: the typemaps and hand-written methods over the
 * language-neutral interface (bindings/uvwool.i).
 *   - Ruby objects <-> uvw_value_t* (ext/uvwool/values.c);
 *   - the int status of a fallible call raises the Uvwool exception of its
 *     kind (ext/uvwool/errors.c), after the arguments are released;
 *   - out-parameters (uvw_var_t **, uvw_token_t **, uvw_value_t **) become
 *     return values;
 *   - tokens and contexts are SWIG classes (Uvwool::Core::Token,
 *     Uvwool::Context) freed by Ruby's GC, so Ruby owns them.
 * Uvwool::ContextVar and Uvwool::Token are hand-written (ext/uvwool/vars.c):
 * get/set/reset are the hot path and SWIG's pointer unwrapping costs more
 * than the call. Context#run takes a block (a Ruby exception must not unwind through
 * uvwool's frames: it is caught, the context left, then re-raised).
 * The fiber and thread hooks are plain C (ext/uvwool/fibers.c): SWIG has
 * nothing to wrap there. lib/uvwool.rb puts the idiomatic layer on top. */
%module "uvwool::core"

%{
#include "uvwool_ruby.h"

/* Context#run and the chain-id readers (hand-written, below). */
struct uvwr_run {
  VALUE result;
  int state;
};

static VALUE uvwr_yield(VALUE unused) {
  (void)unused;
  return rb_yield_values(0);
}

static void uvwr_run_trampoline(void *arg) {
  struct uvwr_run *r = arg;
  r->result = rb_protect(uvwr_yield, Qnil, &r->state);
}

static VALUE uvwr_chain_id_of(const uvw_context_t *ctx) {
  char id[33];
  return uvw_context_chain_id(ctx, id) == 0 ? rb_usascii_str_new_cstr(id) : Qnil;
}
%}

%rename(Token) uvw_token_s;
%rename(Context) uvw_context_s;

/* ---- errors: a failing status raises once the arguments are released ------- */
%typemap(out) int uvw_var_declare, int uvw_get, int uvw_get_or, int uvw_set, int uvw_reset ""
%typemap(ret) int uvw_var_declare, int uvw_get, int uvw_get_or, int uvw_set, int uvw_reset %{
  if (result < 0) uvwr_raise(result);
%}
%typemap(out) int uvw_error_kind_is %{ $result = $1 ? Qtrue : Qfalse; %}

/* ---- values ------------------------------------------------------------- */
%typemap(in) uvw_value_t * %{ $1 = uvwr_to_value($input); %}
/* Uvwool::MISSING means "no default" (a nil default is a real default). */
%typemap(in) uvw_value_t *default_value %{
  $1 = $input == uvwr_missing ? NULL : uvwr_to_value($input);
%}
/* The callee took its own reference if it kept the value. */
%typemap(freearg) uvw_value_t * %{ uvw_value_unref($1); %}

%typemap(in, numinputs=0) uvw_value_t **out (uvw_value_t *temp = NULL) %{ $1 = &temp; %}
%typemap(argout) uvw_value_t **out %{ $result = uvwr_from_value(*$1); %}

/* ---- out-parameters become return values ------------------------------------ */
%typemap(in, numinputs=0) uvw_var_t **out (uvw_var_t *temp = NULL) %{ $1 = &temp; %}
%typemap(argout) uvw_var_t **out %{ $result = SWIG_NewPointerObj(*$1, $*1_descriptor, 0); %}
%typemap(in, numinputs=0) uvw_token_t **token_out (uvw_token_t *temp = NULL) %{ $1 = &temp; %}
%typemap(argout) uvw_token_t **token_out %{
  $result = *$1 ? SWIG_NewPointerObj(*$1, $*1_descriptor, SWIG_POINTER_OWN) : Qnil;
%}

/* Constructors return a new reference, or NULL only when allocation failed. */
%typemap(out) uvw_context_t *uvw_context_copy_current, uvw_context_t *uvw_context_new %{
  if ($1 == NULL) rb_memerror();
  $result = SWIG_NewPointerObj($1, $1_descriptor, SWIG_POINTER_OWN);
%}

%include "../uvwool.i"


/* ---- hand-written: what the neutral interface leaves out ----------------- */
%extend uvw_token_s {
  /* The value before the set (borrowed by the token), or Uvwool::MISSING. */
  VALUE old_value() { return uvwr_from_value(uvw_token_old_value($self)); }
  VALUE used() { return uvw_token_used($self) ? Qtrue : Qfalse; }
}

%extend uvw_context_s {
  /* ctx.run { ... }: the block's value; the block's exception (or break,
   * throw) propagates once ctx is left. */
  VALUE run() {
    struct uvwr_run r = {Qnil, 0};
    rb_need_block();
    int rc = uvw_context_run($self, uvwr_run_trampoline, &r);
    if (rc < 0) uvwr_raise(rc);
    if (r.state) rb_jump_tag(r.state);
    return r.result;
  }
  /* 32 hex digits, or nil when the context is unarmed. */
  VALUE chain_id() { return uvwr_chain_id_of($self); }
  VALUE armed() { return uvw_context_is_armed($self) ? Qtrue : Qfalse; }
  size_t size() { return uvw_context_size($self); }
}

%rename(chain_id) uvwr_current_chain_id;
%rename(thread_generation) uvwr_thread_generation;
%rename(task_id) uvwr_task_id;
%rename(thread_fork) uvwr_thread_fork;
%newobject uvwr_thread_fork;
%typemap(out) uvw_context_t *uvwr_thread_fork %{
  if ($1 == NULL) rb_memerror();
  $result = SWIG_NewPointerObj($1, $1_descriptor, SWIG_POINTER_OWN);
%}
%inline %{
/* The current context's chain id, or nil when it is unarmed. */
VALUE uvwr_current_chain_id(void) { return uvwr_chain_id_of(uvw_context_current()); }
/* This Ruby thread's uvwool thread generation (as in ChainContention's fields). */
unsigned long long uvwr_thread_generation(void) { return (unsigned long long)uvw_thread_generation(); }
/* A detached fork of the current context for a new thread (variables with
 * UVW_PROPAGATE_THREAD): what Thread.new starts in; lib/uvwool.rb gives it
 * to Thread.start / Thread.fork, which skip Thread#initialize. */
uvw_context_t *uvwr_thread_fork(void) { return uvw_context_fork(uvw_context_current(), UVW_PROPAGATE_THREAD); }
/* The current uvwool task's id, 0 outside a fiber task. */
unsigned long long uvwr_task_id(void) { return (unsigned long long)uvw_task_id(uvw_task_current()); }
%}

%init %{
  {
    VALUE uvwool = rb_define_module("Uvwool");
    uvwr_init_errors(uvwool);
    uvwr_init_values(uvwool);
    uvwr_init_fibers(uvwool);
    uvwr_init_vars(uvwool);
    uvwr_init_dispatch(uvwool);
    uvwr_init_warnings(uvwool);
    uvwr_init_baggage(uvwool);
    uvwr_init_worker(uvwool);
  }
%}
