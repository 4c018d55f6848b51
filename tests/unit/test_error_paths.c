/* Every public function of the core and the wire, called on its error paths
 * (NULLs, bad values, wrong state), returns a negative code and leaves a
 * detail record naming the function or the argument. */
#include "error_paths.h"
#include "testutil.h"

static void noop_run(void *arg) { (void)arg; }

static uvw_var_t *unbound(void) { return tu_var("unbound", NULL); }

/* One value for every case (the calls borrow it), held for the process. */
static uvw_value_t *one(void) {
  static uvw_value_t *v;
  if (v == NULL) v = uvw_value_int(1);
  return v;
}

/* A token already used by a reset. */
static uvw_token_t *used_token(uvw_var_t *var) {
  uvw_token_t *t = NULL;
  cr_assert(uvw_set(var, one(), &t) == 0);
  cr_assert(uvw_reset(var, t) == 0);
  return t;
}

/* ---- core ---------------------------------------------------------------- */

static int c_context_enter(void) { return uvw_context_enter(NULL); }
static int c_context_exit(void) { return uvw_context_exit(NULL); }
static int c_context_run_null_fn(void) {
  uvw_context_t *ctx = uvw_context_new();
  int rc = uvw_context_run(ctx, NULL, NULL);
  uvw_context_unref(ctx);
  return rc;
}
static int c_context_run_null_ctx(void) { return uvw_context_run(NULL, noop_run, NULL); }
static int c_context_chain_id(void) {
  char out[33];
  uvw_context_t *ctx = uvw_context_new(); /* unarmed */
  int rc = uvw_context_chain_id(ctx, out);
  uvw_context_unref(ctx);
  return rc;
}
static int c_context_copy(void) { return EP_PTR(uvw_context_copy(NULL)); }
static int c_context_fork(void) { return EP_PTR(uvw_context_fork(NULL, 0)); }
static int c_var_declare(void) {
  uvw_var_t *v;
  return uvw_var_declare(NULL, NULL, NULL, &v);
}
static int c_var_declare_collision(void) {
  uvw_var_t *v = tu_var("twice", NULL), *w;
  return uvw_var_declare(uvw_var_namespace(v), "twice", one(), &w);
}
static int c_var_set_policy(void) { return uvw_var_set_policy(unbound(), 0xffffu); }
static int c_get(void) {
  uvw_value_t *v;
  return uvw_get(NULL, &v);
}
static int c_get_unbound(void) {
  uvw_value_t *v;
  return uvw_get(unbound(), &v);
}
static int c_get_or(void) {
  uvw_value_t *v;
  return uvw_get_or(NULL, NULL, &v);
}
static int c_set(void) { return uvw_set(NULL, one(), NULL); }
static int c_reset(void) { return uvw_reset(unbound(), NULL); }
static int c_reset_used(void) {
  uvw_var_t *var = unbound();
  uvw_token_t *t = used_token(var);
  int rc = uvw_reset(var, t);
  uvw_token_free(t);
  return rc;
}
static int c_replace_allocator(void) { return uvw_replace_allocator(NULL, NULL, NULL, NULL); }
static int c_error_add_field(void) { return uvw_error_add_field(NULL, "a", "b"); }
static int c_error_deserialize(void) {
  uvw_error_t *e;
  return uvw_error_deserialize(NULL, 0, &e);
}
static int c_value_string(void) { return EP_PTR(uvw_value_string(NULL, 3)); }
static int c_value_cstring(void) { return EP_PTR(uvw_value_cstring(NULL)); }
static int c_value_bytes(void) { return EP_PTR(uvw_value_bytes(NULL, 3)); }
static int c_value_opaque(void) { return EP_PTR(uvw_value_opaque(NULL, NULL)); }
static int c_error_serialize(void) { return EP_PTR(uvw_error_serialize(NULL)); }

/* ---- wire ---------------------------------------------------------------- */

static int w_codec_register(void) { return uvw_codec_register(NULL, NULL, NULL, NULL); }
static int w_codec_unregister(void) { return uvw_codec_unregister("no.such.codec"); }
static int w_manifest_encode(void) { return uvw_manifest_encode(NULL, NULL, NULL); }
static int w_manifest_decode(void) {
  uvw_manifest_t *m;
  return uvw_manifest_decode("\xff\xff\xff", 3, &m);
}
static int w_manifest_id(void) {
  char out[33];
  return uvw_manifest_id(NULL, out);
}
static int w_manifest_mount(void) { return uvw_manifest_mount(NULL); }
static int w_frame_new(void) { return EP_PTR(uvw_frame_new((uvw_frame_kind_t)99, 1)); }
static uvw_frame_t *ack(void) { return uvw_frame_new(UVW_FRAME_ACK, 1); }
#define W_FRAME_CASE(name, call)  \
  static int w_##name(void) {     \
    uvw_frame_t *f = ack();       \
    int rc = call;                \
    uvw_frame_free(f);            \
    return rc;                    \
  }
W_FRAME_CASE(frame_set_routine, uvw_frame_set_routine(f, "r"))
W_FRAME_CASE(frame_add_arg, uvw_frame_add_arg(f, one()))
W_FRAME_CASE(frame_set_dispatch_timeout, uvw_frame_set_dispatch_timeout(f, 5))
W_FRAME_CASE(frame_set_value, uvw_frame_set_value(f, one()))
W_FRAME_CASE(frame_set_done, uvw_frame_set_done(f, 1))
W_FRAME_CASE(frame_set_error, uvw_frame_set_error(f, NULL))
W_FRAME_CASE(frame_attach_manifest, uvw_frame_set_manifest(f, NULL))
W_FRAME_CASE(frame_set_manifest_bytes, uvw_frame_set_manifest_bytes(f, "x", 1))
static int w_frame_mount(void) { return uvw_frame_mount(NULL); }
static int w_frame_encode(void) {
  void *out;
  size_t len;
  return uvw_frame_encode(NULL, &out, &len);
}
static int w_frame_decode_request(void) {
  uvw_frame_t *f;
  return uvw_frame_decode_request("\xff\xff\xff", 3, &f);
}
static int w_frame_decode_response(void) {
  uvw_frame_t *f;
  return uvw_frame_decode_response("\xff\xff\xff", 3, &f);
}
static int w_text_encode(void) { return uvw_text_encode(NULL, NULL); }
static int w_text_decode(void) {
  uvw_manifest_t *m;
  return uvw_text_decode("not text", 8, &m);
}
static int w_baggage_encode(void) { return uvw_baggage_encode(NULL, NULL); }
static int w_baggage_decode(void) {
  uvw_manifest_t *m;
  return uvw_baggage_decode(NULL, 3, &m);
}
static int w_env_render(void) { return uvw_env_encode(NULL, NULL); }
/* ---- values a user cannot misuse, and runtime tasks ----------------------------- */

static int c_get_ref(void) {
  uvw_value_t *v;
  return uvw_get_ref(unbound(), &v);
}
static int c_get_string_kind(void) {
  uvw_var_t *var = tu_var("an_int", NULL);
  uvw_token_t *t = NULL;
  cr_assert(uvw_set(var, one(), &t) == 0);
  char buf[8];
  size_t len;
  int rc = uvw_get_string(var, buf, sizeof(buf), &len);
  /* A successful call leaves the failing call's detail in place. */
  cr_assert(uvw_reset(var, t) == 0);
  uvw_token_free(t);
  return rc;
}
static int c_set_cstring(void) { return uvw_set_cstring(unbound(), NULL, NULL); }
static int c_var_run(void) { return uvw_var_run(unbound(), one(), NULL, NULL); }
static int c_task_new(void) { return uvw_task_new(NULL, NULL); }
static int c_task_new_in(void) {
  uvw_task_t *t;
  return uvw_task_new_in(NULL, &t);
}
static int c_task_enter(void) { return uvw_task_enter(NULL); }
static int c_task_leave(void) {
  uvw_task_t *t;
  cr_assert(uvw_task_new(NULL, &t) == 0);
  int rc = uvw_task_leave(t); /* never entered */
  cr_assert(uvw_task_finish(t) == 0);
  uvw_task_unref(t);
  return rc;
}
static int c_task_finish(void) { return uvw_task_finish(NULL); }

static int w_env_mount(void) {
  setenv("UVWOOL_CHAIN", "%%% not a chain", 1);
  int rc = uvw_env_mount();
  unsetenv("UVWOOL_CHAIN");
  return rc;
}

static const ep_case_t cases[] = {
    {"uvw_context_enter", c_context_enter, NULL},
    {"uvw_context_exit", c_context_exit, "exit"},
    {"uvw_context_run", c_context_run_null_fn, "fn"},
    {"uvw_context_run", c_context_run_null_ctx, "ctx"},
    {"uvw_context_chain_id", c_context_chain_id, "chain id"},
    {"uvw_context_copy", c_context_copy, NULL},
    {"uvw_context_fork", c_context_fork, NULL},
    {"uvw_var_declare", c_var_declare, "namespace"},
    {"uvw_var_declare", c_var_declare_collision, "twice"},
    {"uvw_var_set_policy", c_var_set_policy, "policy"},
    {"uvw_get", c_get, NULL},
    {"uvw_get", c_get_unbound, "unbound"},
    {"uvw_get_or", c_get_or, NULL},
    {"uvw_set", c_set, NULL},
    {"uvw_reset", c_reset, NULL},
    {"uvw_reset", c_reset_used, "token"},
    {"uvw_replace_allocator", c_replace_allocator, NULL},
    {"uvw_error_add_field", c_error_add_field, NULL},
    {"uvw_error_deserialize", c_error_deserialize, NULL},
    {"uvw_value_string", c_value_string, "data"},
    {"uvw_value_cstring", c_value_cstring, "string"},
    {"uvw_value_bytes", c_value_bytes, "data"},
    {"uvw_value_opaque", c_value_opaque, "ops"},
    {"uvw_error_serialize", c_error_serialize, NULL},
    {"uvw_codec_register", w_codec_register, NULL},
    {"uvw_codec_unregister", w_codec_unregister, "no.such.codec"},
    {"uvw_manifest_encode", w_manifest_encode, "out or len"},
    {"uvw_manifest_decode", w_manifest_decode, "manifest"},
    {"uvw_manifest_id", w_manifest_id, "chain id"},
    {"uvw_manifest_mount", w_manifest_mount, NULL},
    {"uvw_frame_new", w_frame_new, NULL},
    {"uvw_frame_set_routine", w_frame_set_routine, "frame of kind Ack"},
    {"uvw_frame_add_arg", w_frame_add_arg, "frame of kind Ack"},
    {"uvw_frame_set_dispatch_timeout", w_frame_set_dispatch_timeout, "frame of kind Ack"},
    {"uvw_frame_set_value", w_frame_set_value, "frame of kind Ack"},
    {"uvw_frame_set_done", w_frame_set_done, "frame of kind Ack"},
    {"uvw_frame_set_error", w_frame_set_error, "frame of kind Ack"},
    {"uvw_frame_set_manifest", w_frame_attach_manifest, "frame of kind Ack"},
    {"uvw_frame_set_manifest_bytes", w_frame_set_manifest_bytes, "frame of kind Ack"},
    {"uvw_frame_mount", w_frame_mount, NULL},
    {"uvw_frame_encode", w_frame_encode, NULL},
    {"uvw_frame_decode_request", w_frame_decode_request, "request frame"},
    {"uvw_frame_decode_response", w_frame_decode_response, "response frame"},
    {"uvw_text_encode", w_text_encode, NULL},
    {"uvw_text_decode", w_text_decode, "manifest text"},
    {"uvw_baggage_encode", w_baggage_encode, NULL},
    {"uvw_baggage_decode", w_baggage_decode, NULL},
    {"uvw_env_encode", w_env_render, NULL},
    {"uvw_env_mount", w_env_mount, NULL},
    {"uvw_get_ref", c_get_ref, "unbound"},
    {"uvw_get_string", c_get_string_kind, "an_int"},
    {"uvw_set_cstring", c_set_cstring, NULL},
    {"uvw_var_run", c_var_run, "fn"},
    {"uvw_task_new", c_task_new, "out"},
    {"uvw_task_new_in", c_task_new_in, "ctx"},
    {"uvw_task_enter", c_task_enter, "task"},
    {"uvw_task_leave", c_task_leave, "uvw_task_leave"},
    {"uvw_task_finish", c_task_finish, "task"},
};

#define GETTER "a getter: returns a field or a NULL/0 default, never fails"
#define FLAG "an int flag or count, not a code: nothing to fail"
#define FREE "a release: NULL is a no-op, nothing to report"
#define NOMEM "fails only for lack of memory (the allocation-failure tests cover it)"
static const ep_allowed_t allowed[] = {
    {"uvw_core_id", "returns an address inside this copy of the core: nothing to fail"},
    {"uvw_task_current", GETTER},
    {"uvw_task_ref", "a reference of NULL is NULL, not a failure"},
    {"uvw_task_unref", FREE},
    {"uvw_task_finished", FLAG},
    {"uvw_task_id", GETTER},
    {"uvw_task_context", GETTER},
    {"uvw_context_new", NOMEM},
    {"uvw_context_copy_current", NOMEM},
    {"uvw_value_int", NOMEM},
    {"uvw_value_double", NOMEM},
    {"uvw_error_new", NOMEM},
    {"uvw_context_current", "returns the current context (a borrowed, always existing one)"},
    {"uvw_context_ref", "a reference of NULL is NULL, not a failure"},
    {"uvw_context_unref", FREE},
    {"uvw_context_is_armed", FLAG},
    {"uvw_context_size", FLAG},
    {"uvw_context_lookup", GETTER},
    {"uvw_context_chain", GETTER},
    {"uvw_context_owner_thread", GETTER},
    {"uvw_context_pending_reset_count", FLAG},
    {"uvw_context_has_pending_reset", FLAG},
    {"uvw_thread_generation", GETTER},
    {"uvw_var_find", "NULL means not declared: an answer, not a failure"},
    {"uvw_var_namespace", GETTER},
    {"uvw_var_name", GETTER},
    {"uvw_var_default", GETTER},
    {"uvw_var_is_stub", FLAG},
    {"uvw_var_policy", FLAG},
    {"uvw_token_var", GETTER},
    {"uvw_token_old_value", GETTER},
    {"uvw_token_used", FLAG},
    {"uvw_token_free", FREE},
    {"uvw_value_missing", "a static sentinel, never allocated"},
    {"uvw_value_undefined", "a static sentinel, never allocated"},
    {"uvw_value_nil", "a static sentinel, never allocated"},
    {"uvw_value_bool", "the two static booleans, never allocated"},
    {"uvw_value_ref", "a reference of NULL is NULL, not a failure"},
    {"uvw_value_unref", FREE},
    {"uvw_value_kind", GETTER},
    {"uvw_value_as_bool", GETTER},
    {"uvw_value_as_int", GETTER},
    {"uvw_value_as_double", GETTER},
    {"uvw_value_as_string", GETTER},
    {"uvw_value_as_opaque", GETTER},
    {"uvw_value_data", GETTER},
    {"uvw_value_len", GETTER},
    {"uvw_value_opaque_ops", GETTER},
    {"uvw_value_equal", FLAG},
    {"uvw_version_string", "a static string"},
    {"uvw_free", FREE},
    {"uvw_strerror", "a static string for every code"},
    {"uvw_err_name", "a static string for every code"},
    {"uvw_error_kind_name", GETTER},
    {"uvw_error_kind_parent", GETTER},
    {"uvw_error_kind_is", FLAG},
    {"uvw_error_kind_from_name", "UVW_KIND_NONE means not a kind: an answer"},
    {"uvw_last_error", GETTER},
    {"uvw_clear_error", "void; clearing cannot fail"},
    {"uvw_error_code", GETTER},
    {"uvw_error_kind", GETTER},
    {"uvw_error_message", GETTER},
    {"uvw_error_field_count", FLAG},
    {"uvw_error_field_name", GETTER},
    {"uvw_error_field_value", GETTER},
    {"uvw_error_field", GETTER},
    {"uvw_error_cause", GETTER},
    {"uvw_error_context", GETTER},
    {"uvw_error_warning_count", FLAG},
    {"uvw_error_warning", GETTER},
    {"uvw_error_ref", "a reference of NULL is NULL, not a failure"},
    {"uvw_error_unref", FREE},
    {"uvw_set_warning_sink", "void; NULL restores the default sink"},
    {"uvw_set_strict", "void; any int is a valid setting"},
    {"uvw_strict", FLAG},
    {"uvw_wire_set_max_size", "void; 0 restores the default"},
    {"uvw_wire_max_size", GETTER},
    {"uvw_wire_set_stub_cap", "void; any cap is valid"},
    {"uvw_wire_stub_cap", GETTER},
    {"uvw_wire_stub_count", "a count: nothing to fail"},
    {"uvw_manifest_free", FREE},
    {"uvw_manifest_entry_count", FLAG},
    {"uvw_manifest_entry_var", GETTER},
    {"uvw_manifest_entry_value", GETTER},
    {"uvw_frame_free", FREE},
    {"uvw_frame_kind", GETTER},
    {"uvw_frame_dispatch_id", GETTER},
    {"uvw_frame_routine", GETTER},
    {"uvw_frame_arg_count", FLAG},
    {"uvw_frame_arg", GETTER},
    {"uvw_frame_dispatch_timeout", "an int flag: whether the Task carried a bound"},
    {"uvw_frame_value", GETTER},
    {"uvw_frame_done", FLAG},
    {"uvw_frame_error", GETTER},
    {"uvw_frame_manifest_state", GETTER},
    {"uvw_frame_manifest", GETTER},
    {"uvw_frame_manifest_error", GETTER},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

Test(error_paths, every_failing_core_and_wire_call_leaves_a_detail_naming_it) { ep_run_all(cases, N(cases)); }

Test(error_paths, every_exported_core_and_wire_function_is_in_the_table_or_the_allow_list) {
  static const char *const headers[] = {"common.h", "context.h", "task.h", "value.h", "errors.h", "wire.h"};
  ep_check_coverage(headers, N(headers), cases, N(cases), allowed, N(allowed));
}

Test(error_paths, context_run_with_a_null_fn_returns_einval_and_changes_nothing) {
  uvw_context_t *ctx = uvw_context_new();
  cr_assert_eq(uvw_context_run(ctx, NULL, NULL), UVW_EINVAL);
  cr_expect_str_eq(uvw_error_field(uvw_last_error(), "argument"), "fn");
  cr_expect_eq(uvw_context_current() != ctx, 1, "the context was left entered");
  uvw_context_unref(ctx);
}

Test(error_paths, strerror_and_err_name_say_success_for_0) {
  cr_expect_str_eq(uvw_strerror(0), "success");
  cr_expect_str_eq(uvw_err_name(0), "UVW_OK");
}

Test(error_paths, strerror_and_err_name_keep_uvwool_names_for_uvwool_codes) {
  cr_expect_str_eq(uvw_err_name(UVW_ELOOKUP), "UVW_ELOOKUP");
  cr_expect_str_eq(uvw_strerror(UVW_ELOOKUP), "context variable has no value");
  cr_expect_str_eq(uvw_err_name(-12), "UVW_ENOMEM");
  cr_expect_str_eq(uvw_err_name(UVW_ENOROUTINE), "UVW_ENOROUTINE");
}

Test(error_paths, unknown_codes_are_unknown) {
  cr_expect_str_eq(uvw_strerror(-29999), "unknown error");
  cr_expect_str_eq(uvw_err_name(-29999), "UVW_UNKNOWN");
}
