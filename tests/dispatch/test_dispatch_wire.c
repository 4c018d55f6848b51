/* What crosses the boundary and how it fails (docs/testing.md row 33-35):
 * lenient and strict serialization on both sides, stubs passing through a
 * worker that never declared them, and the guard on a worker's offload. */
#include "harness.h"

static void run(const char *routine, uvw_value_t **args, size_t nargs, dh_reply_t *r) {
  cr_assert_eq(uvw_conn_dispatch(conn, routine, args, nargs, NULL, dh_record, r, NULL), 0, "%s: %s", routine,
               uvw_error_message(uvw_last_error()));
  dh_run_until(&loop, &r->calls, 1, 30000);
}

static int warnings;
static char warning_kind[64];
static void count_warning(const uvw_error_t *w, void *arg) {
  (void)arg;
  warnings++;
  snprintf(warning_kind, sizeof(warning_kind), "%s", uvw_error_kind_name(uvw_error_kind(w)));
}

/* ---- docs/testing.md row 35: the guard on a worker's offload ------------------------------- */

Test(wire, plain_work_in_a_routine_trips_the_guard_and_the_caller_gets_its_fields) {
  dh_open("pipe", NULL);
  uvw_context_t *ctx = dh_enter("offloaded");
  char chain[33];
  dh_chain_id(chain);
  dh_reply_t plain = {0}, thread = {0};
  run("offload_plain", NULL, 0, &plain);
  cr_assert_eq(plain.status, UVW_EREMOTE);
  cr_assert_eq(uvw_error_kind(plain.error), UVW_KIND_CHAIN_CONTENTION);
  cr_assert_eq(uvw_error_code(plain.error), UVW_ECONTENTION);
  cr_assert_str_eq(uvw_error_field(plain.error, "chain_id"), chain, "the worker ran the caller's chain");
  cr_assert_str_eq(uvw_error_field(plain.error, "kind"), "thread");
  const char *owner = uvw_error_field(plain.error, "owner_thread"),
             *offender = uvw_error_field(plain.error, "offending_thread");
  cr_assert_not_null(owner);
  cr_assert_not_null(offender);
  cr_assert_str_neq(owner, offender);
  run("offload_to_thread", NULL, 0, &thread);
  cr_assert_eq(thread.status, 0, "%s", thread.error_msg);
  cr_assert_str_eq(thread.value, "thread saw offloaded");
  dh_leave(ctx);
  dh_reply_clear(&plain);
  dh_reply_clear(&thread);
  dh_close();
}

/* ---- docs/testing.md row 34: stubs ------------------------------------------------------------ */

/* Dispatch `routine` (string args) over the raw socket with the current
 * context's manifest; return the Result frame. */
static uvw_frame_t *raw_dispatch(int fd, uint64_t id, const char *routine, const char *a0, const char *a1) {
  uvw_frame_t *task = uvw_frame_new(UVW_FRAME_TASK, id);
  uvw_frame_set_routine(task, routine);
  const char *args[] = {a0, a1};
  for (int i = 0; i < 2 && args[i]; i++) {
    uvw_value_t *v = uvw_value_cstring(args[i]);
    uvw_frame_add_arg(task, v);
    uvw_value_unref(v);
  }
  dh_raw_send_frame(fd, task);
  uvw_frame_free(task);
  uvw_frame_t *next = uvw_frame_new(UVW_FRAME_NEXT, id);
  cr_assert_eq(uvw_frame_set_manifest(next, NULL), 0);
  dh_raw_send_frame(fd, next);
  uvw_frame_free(next);
  uvw_frame_t *ack = dh_raw_recv_frame(fd);
  cr_assert_eq(uvw_frame_kind(ack), UVW_FRAME_ACK);
  uvw_frame_free(ack);
  uvw_frame_t *res = dh_raw_recv_frame(fd);
  cr_assert_eq(uvw_frame_kind(res), UVW_FRAME_RESULT);
  return res;
}

/* The value of (ns, name) in a frame's manifest, or NULL. */
static uvw_value_t *manifest_value(const uvw_frame_t *f, const char *name) {
  cr_assert_eq(uvw_frame_manifest_state(f), UVW_FRAME_MANIFEST_DECODED);
  const uvw_manifest_t *m = uvw_frame_manifest(f);
  for (size_t i = 0; i < uvw_manifest_entry_count(m); i++) {
    uvw_var_t *v = uvw_manifest_entry_var(m, i);
    if (strcmp(uvw_var_namespace(v), "t") == 0 && strcmp(uvw_var_name(v), name) == 0)
      return uvw_manifest_entry_value(m, i);
  }
  return NULL;
}

Test(wire, a_variable_the_worker_never_declared_passes_through_and_is_promoted_once_declared) {
  dh_open("pipe", NULL);
  uvw_context_t *ctx = dh_enter("stubs");
  dh_set_str(dh_stub_only, "carried");
  int fd = dh_raw_connect(worker.addr[0]);
  /* The worker never declared t.stub_only: it travels as a stub and comes
   * back, unchanged, in the worker's own manifest. */
  uvw_frame_t *res = raw_dispatch(fd, 1, "echo", "x", NULL);
  uvw_value_t *back = manifest_value(res, "stub_only");
  cr_assert_not_null(back, "the stub came back in the worker's manifest");
  cr_assert_str_eq(uvw_value_as_string(back), "carried");
  uvw_frame_free(res);
  /* Declared in the worker, it is promoted: the routine reads the value. */
  res = raw_dispatch(fd, 2, "declare_and_get", "t", "stub_only");
  cr_assert_str_eq(uvw_value_as_string(uvw_frame_value(res)), "carried");
  uvw_frame_free(res);
  /* And it keeps travelling as the declared variable. */
  res = raw_dispatch(fd, 3, "echo", "x", NULL);
  back = manifest_value(res, "stub_only");
  cr_assert_not_null(back);
  cr_assert_str_eq(uvw_value_as_string(back), "carried");
  uvw_frame_free(res);
  close(fd);
  dh_leave(ctx);
  dh_close();
}

/* ---- docs/testing.md row 33: serialization failures on both sides ------------------------- */

static const uvw_opaque_ops_t caller_only = {"t.caller_only", NULL};

Test(wire, lenient_worker_drops_an_unencodable_key_and_sends_the_rest) {
  dh_open("pipe", NULL);
  uvw_context_t *ctx = dh_enter("before");
  dh_set_str(dh_opaque, "caller-value");
  dh_reply_t r = {0};
  run("bind_unserializable", NULL, 0, &r);
  cr_assert_eq(r.status, 0, "%s", r.error_msg);
  cr_assert_str_eq(r.request_id, "alongside", "the rest of the manifest came back");
  cr_assert_str_eq(r.opaque, "caller-value", "the key was dropped, not reset: no false reset");
  dh_leave(ctx);
  dh_reply_clear(&r);
  dh_close();
}

Test(wire, strict_worker_fails_the_answer_with_chain_serialization_error) {
  dh_open("pipe", "--strict");
  uvw_context_t *ctx = dh_enter("before");
  dh_reply_t r = {0};
  run("bind_unserializable", NULL, 0, &r);
  cr_assert_eq(r.status, UVW_EREMOTE);
  cr_assert_eq(uvw_error_kind(r.error), UVW_KIND_CHAIN_SERIALIZATION_ERROR);
  cr_assert_geq(uvw_error_warning_count(r.error), 1, "each failure is aggregated");
  cr_assert_eq(uvw_error_kind(uvw_error_warning(r.error, 0)), UVW_KIND_SERIALIZATION_WARNING);
  cr_assert_str_eq(r.request_id, "before", "nothing was merged");
  dh_leave(ctx);
  dh_reply_clear(&r);
  dh_close();
}

Test(wire, lenient_caller_warns_and_sends_the_rest) {
  dh_open("pipe", NULL);
  uvw_context_t *ctx = dh_enter("sent");
  static int dummy;
  uvw_value_t *o = uvw_value_opaque(&dummy, &caller_only);
  cr_assert_eq(uvw_set(dh_opaque, o, NULL), 0);
  uvw_value_unref(o);
  warnings = 0;
  uvw_set_warning_sink(count_warning, NULL);
  dh_reply_t r = {0};
  run("read_and_mutate", NULL, 0, &r);
  uvw_set_warning_sink(NULL, NULL);
  cr_assert_eq(r.status, 0);
  cr_assert_str_eq(r.value, "saw:sent");
  cr_assert_geq(warnings, 1);
  cr_assert_str_eq(warning_kind, "SerializationWarning");
  dh_leave(ctx);
  dh_reply_clear(&r);
  dh_close();
}

Test(wire, strict_caller_refuses_to_send_an_unencodable_context) {
  dh_open("pipe", NULL);
  uvw_context_t *ctx = dh_enter("never-sent");
  static int dummy;
  uvw_value_t *o = uvw_value_opaque(&dummy, &caller_only);
  cr_assert_eq(uvw_set(dh_opaque, o, NULL), 0);
  uvw_value_unref(o);
  uvw_set_strict(1);
  dh_reply_t r = {0};
  int rc = uvw_conn_dispatch(conn, "read_and_mutate", NULL, 0, NULL, dh_record, &r, NULL);
  uvw_set_strict(0);
  cr_assert_eq(rc, UVW_ECHAINSERIALIZE);
  cr_assert_eq(uvw_error_kind(uvw_last_error()), UVW_KIND_CHAIN_SERIALIZATION_ERROR);
  cr_assert_eq(uvw_conn_pending(conn), 0, "nothing was sent");
  dh_leave(ctx);
  dh_close();
  cr_assert_eq(r.calls, 0);
}

Test(wire, a_value_the_caller_cannot_decode_is_skipped_leniently_and_fails_strictly) {
  dh_open("pipe", NULL);
  uvw_context_t *ctx = dh_enter("before");
  dh_reply_t lenient = {0}, strict = {0};
  warnings = 0;
  uvw_set_warning_sink(count_warning, NULL);
  run("bind_worker_codec", NULL, 0, &lenient);
  uvw_set_warning_sink(NULL, NULL);
  cr_assert_eq(lenient.status, 0, "%s", lenient.error_msg);
  cr_assert_str_eq(lenient.request_id, "alongside-codec");
  cr_assert_geq(warnings, 1);
  uvw_set_strict(1);
  run("bind_worker_codec", NULL, 0, &strict);
  uvw_set_strict(0);
  cr_assert_eq(strict.status, UVW_ECHAINSERIALIZE);
  cr_assert_str_eq(strict.request_id, "before", "nothing was merged");
  dh_leave(ctx);
  dh_reply_clear(&lenient);
  dh_reply_clear(&strict);
  dh_close();
}
