/* docs/testing.md row 28 (frames) and row 16 (ChainContention survives the
 * wire with every field). Frames are checked with protobuf-c directly and
 * by round trip. */
#include <pthread.h>

#include "context.h"
#include "error.h"
#include "wiretest.h"

static uint8_t *encode(const uvw_frame_t *f, size_t *len) {
  void *p;
  int rc = uvw_frame_encode(f, &p, len);
  cr_assert_eq(rc, 0, "frame encode: %s", uvw_error_message(uvw_last_error()));
  return p;
}

static uvw_frame_t *roundtrip(const uvw_frame_t *f) {
  size_t len;
  uint8_t *b = encode(f, &len);
  uvw_frame_t *out = NULL;
  int rc = uvw_frame_kind(f) <= UVW_FRAME_THROW ? uvw_frame_decode_request(b, len, &out)
                                               : uvw_frame_decode_response(b, len, &out);
  cr_assert_eq(rc, 0, "frame decode: %s", uvw_error_message(uvw_last_error()));
  uvw_free(b);
  cr_assert_eq(uvw_frame_kind(out), uvw_frame_kind(f));
  cr_assert_eq(uvw_frame_dispatch_id(out), uvw_frame_dispatch_id(f));
  return out;
}

static uvw_error_t *sample_error(void) {
  uvw_error_t *inner = uvw__error_new(UVW_ELOOKUP, UVW_KIND_LOOKUP_ERROR, "inner");
  uvw_error_t *ctx2 = uvw__error_new(0, UVW_KIND_RUNTIME_ERROR, "while handling");
  uvw_error_t *e = uvw__error_new(UVW_ESERIALIZE, UVW_KIND_SERIALIZATION_ERROR, "outer");
  uvw__error_field(e, "k1", "v1");
  uvw__error_field(e, "k2", "v2");
  uvw__error_set_cause(e, inner);
  uvw__error_set_context(e, ctx2);
  uvw__error_add_warning(e, uvw__error_new(UVW_ESERIALIZE, UVW_KIND_SERIALIZATION_WARNING, "w0"));
  return e;
}

static void check_sample(const uvw_error_t *e) {
  cr_assert_eq(uvw_error_kind(e), UVW_KIND_SERIALIZATION_ERROR);
  cr_assert_eq(uvw_error_code(e), UVW_ESERIALIZE);
  cr_assert_str_eq(uvw_error_message(e), "outer");
  cr_assert_eq(uvw_error_field_count(e), 2);
  cr_assert_str_eq(uvw_error_field_name(e, 0), "k1");
  cr_assert_str_eq(uvw_error_field_value(e, 1), "v2");
  cr_assert_str_eq(uvw_error_message(uvw_error_cause(e)), "inner");
  cr_assert_eq(uvw_error_kind(uvw_error_cause(e)), UVW_KIND_LOOKUP_ERROR);
  cr_assert_str_eq(uvw_error_message(uvw_error_context(e)), "while handling");
  cr_assert_eq(uvw_error_warning_count(e), 1);
  cr_assert_eq(uvw_error_kind(uvw_error_warning(e, 0)), UVW_KIND_SERIALIZATION_WARNING);
}

Test(frames, task_round_trips_without_a_manifest) {
  uvw_frame_t *f = uvw_frame_new(UVW_FRAME_TASK, 77);
  cr_assert_eq(uvw_frame_set_routine(f, "math.add"), 0);
  uvw_value_t *args[] = {uvw_value_int(-5), uvw_value_cstring("x"), uvw_value_nil(), uvw_value_double(0.5),
                         uvw_value_bytes("\0\1", 2), uvw_value_bool(1)};
  for (size_t i = 0; i < 6; i++) cr_assert_eq(uvw_frame_add_arg(f, args[i]), 0);
  cr_assert_eq(uvw_frame_set_dispatch_timeout(f, 2500), 0);
  cr_assert_eq(uvw_frame_set_manifest(f, NULL), UVW_EINVAL, "a Task never carries a manifest");
  size_t len;
  uint8_t *b = encode(f, &len);
  Uvwool__Request *req = uvwool__request__unpack(NULL, len, b);
  cr_assert_not_null(req);
  cr_assert_eq(req->kind_case, UVWOOL__REQUEST__KIND_TASK);
  cr_assert_eq(req->dispatch_id, 77);
  cr_assert(!req->has_manifest);
  cr_assert_str_eq(req->task->routine, "math.add");
  cr_assert_eq(req->task->n_args, 6);
  cr_assert_eq(req->task->args[0]->int_value, -5);
  cr_assert_eq(req->task->runtime->dispatch_timeout_ms, 2500);
  uvwool__request__free_unpacked(req, NULL);
  uvw_free(b);
  uvw_frame_t *g = roundtrip(f);
  cr_assert_str_eq(uvw_frame_routine(g), "math.add");
  cr_assert_eq(uvw_frame_arg_count(g), 6);
  for (size_t i = 0; i < 6; i++) cr_assert(uvw_value_equal(uvw_frame_arg(g, i), args[i]), "arg %zu", i);
  uint64_t ms = 0;
  cr_assert(uvw_frame_dispatch_timeout(g, &ms));
  cr_assert_eq(ms, 2500);
  cr_assert_eq(uvw_frame_manifest_state(g), UVW_FRAME_MANIFEST_ABSENT);
  uvw_frame_free(g);
  uvw_frame_free(f);
  for (size_t i = 0; i < 6; i++) uvw_value_unref(args[i]);
}

/* Next/Send/Throw/Result/Exception carry the sender's manifest; the
 * receiver mounts it. Ack/Nack/Task never do. */
Test(frames, mid_stream_kinds_carry_the_manifest) {
  uvw_var_t *v = tu_var("v", NULL);
  uvw_context_t *sender = wt_enter_new();
  wt_set(v, uvw_value_cstring("from sender"));
  char sid[33];
  uvw_context_chain_id(sender, sid);
  uvw_error_t *err = sample_error();
  uvw_value_t *val = uvw_value_int(9);
  const uvw_frame_kind_t kinds[] = {UVW_FRAME_NEXT, UVW_FRAME_SEND, UVW_FRAME_THROW, UVW_FRAME_RESULT,
                                    UVW_FRAME_EXCEPTION};
  for (size_t k = 0; k < 5; k++) {
    uvw_frame_t *f = uvw_frame_new(kinds[k], 1000 + k);
    if (kinds[k] == UVW_FRAME_SEND || kinds[k] == UVW_FRAME_RESULT) cr_assert_eq(uvw_frame_set_value(f, val), 0);
    if (kinds[k] == UVW_FRAME_RESULT) cr_assert_eq(uvw_frame_set_done(f, 1), 0);
    if (kinds[k] == UVW_FRAME_THROW || kinds[k] == UVW_FRAME_EXCEPTION) cr_assert_eq(uvw_frame_set_error(f, err), 0);
    cr_assert_eq(uvw_frame_set_manifest(f, NULL), 0);
    uvw_frame_t *g = roundtrip(f);
    cr_assert_eq(uvw_frame_manifest_state(g), UVW_FRAME_MANIFEST_DECODED, "kind %d", kinds[k]);
    if (kinds[k] == UVW_FRAME_SEND || kinds[k] == UVW_FRAME_RESULT) cr_assert_eq(uvw_value_as_int(uvw_frame_value(g)), 9);
    if (kinds[k] == UVW_FRAME_RESULT) cr_assert(uvw_frame_done(g));
    if (kinds[k] == UVW_FRAME_THROW || kinds[k] == UVW_FRAME_EXCEPTION) check_sample(uvw_frame_error(g));
    uvw_context_t *receiver = wt_enter_new();
    cr_assert_eq(uvw_frame_mount(g), 0);
    char rid[33];
    uvw_context_chain_id(receiver, rid);
    cr_assert_str_eq(rid, sid);
    cr_assert_str_eq(uvw_value_as_string(uvw_context_lookup(receiver, v)), "from sender");
    wt_leave(receiver);
    uvw_frame_free(g);
    uvw_frame_free(f);
  }
  /* Ack and Nack: no manifest, by API and on the wire. */
  uvw_frame_t *ack = uvw_frame_new(UVW_FRAME_ACK, 5), *nack = uvw_frame_new(UVW_FRAME_NACK, 6);
  cr_assert_eq(uvw_frame_set_manifest(ack, NULL), UVW_EINVAL);
  cr_assert_eq(uvw_frame_set_manifest(nack, NULL), UVW_EINVAL);
  cr_assert_eq(uvw_frame_set_error(nack, err), 0);
  uvw_frame_t *g = roundtrip(ack);
  cr_assert_eq(uvw_frame_manifest_state(g), UVW_FRAME_MANIFEST_ABSENT);
  uvw_frame_free(g);
  g = roundtrip(nack);
  check_sample(uvw_frame_error(g));
  uvw_frame_free(g);
  uvw_frame_free(ack);
  uvw_frame_free(nack);
  wt_leave(sender);
  uvw_value_unref(val);
  uvw_error_unref(err);
}

Test(frames, unarmed_sender_sends_no_manifest) {
  uvw_context_t *ctx = wt_enter_new();
  uvw_frame_t *f = uvw_frame_new(UVW_FRAME_NEXT, 1);
  cr_assert_eq(uvw_frame_set_manifest(f, NULL), 0);
  size_t len;
  uint8_t *b = encode(f, &len);
  Uvwool__Request *req = uvwool__request__unpack(NULL, len, b);
  cr_assert(!req->has_manifest);
  cr_assert_eq(req->kind_case, UVWOOL__REQUEST__KIND_NEXT);
  uvwool__request__free_unpacked(req, NULL);
  uvw_free(b);
  uvw_frame_free(f);
  wt_leave(ctx);
}

Test(frames, a_manifest_on_task_ack_or_nack_is_malformed) {
  Uvwool__Request req = UVWOOL__REQUEST__INIT;
  Uvwool__Task task = UVWOOL__TASK__INIT;
  task.routine = "r";
  req.kind_case = UVWOOL__REQUEST__KIND_TASK;
  req.task = &task;
  req.has_manifest = 1;
  size_t len;
  uint8_t *b = wt_pack(&req.base, &len);
  uvw_frame_t *f = NULL;
  cr_assert_eq(uvw_frame_decode_request(b, len, &f), UVW_EMALFORMED);
  cr_assert_null(f);
  free(b);
  Uvwool__Response resp = UVWOOL__RESPONSE__INIT;
  Uvwool__Ack ack = UVWOOL__ACK__INIT;
  resp.kind_case = UVWOOL__RESPONSE__KIND_ACK;
  resp.ack = &ack;
  resp.has_manifest = 1;
  b = wt_pack(&resp.base, &len);
  cr_assert_eq(uvw_frame_decode_response(b, len, &f), UVW_EMALFORMED);
  free(b);
  /* No kind at all. */
  Uvwool__Request empty = UVWOOL__REQUEST__INIT;
  b = wt_pack(&empty.base, &len);
  cr_assert_eq(uvw_frame_decode_request(b, len, &f), UVW_EMALFORMED);
  free(b);
}

/* A manifest that fails to decode does not fail the frame: the error waits
 * for the mount, which changes nothing. */
Test(frames, manifest_decode_failure_is_deferred_to_mount) {
  uvw_var_t *v = tu_var("v", NULL);
  static const uint8_t junk[] = {0x0a, 0x03, 'b', 'a', 'd'}; /* id "bad": malformed */
  uvw_frame_t *f = uvw_frame_new(UVW_FRAME_RESULT, 3);
  uvw_value_t *val = uvw_value_int(1);
  uvw_frame_set_value(f, val);
  cr_assert_eq(uvw_frame_set_manifest_bytes(f, junk, sizeof junk), 0);
  uvw_frame_t *g = roundtrip(f);
  cr_assert_eq(uvw_frame_manifest_state(g), UVW_FRAME_MANIFEST_ERROR);
  cr_assert_eq(uvw_value_as_int(uvw_frame_value(g)), 1, "the payload survives");
  cr_assert_eq(uvw_error_code(uvw_frame_manifest_error(g)), UVW_EMALFORMED);
  uvw_context_t *ctx = wt_enter_new();
  wt_set(v, uvw_value_int(5));
  const void *chain = uvw_context_chain(ctx);
  cr_assert_eq(uvw_frame_mount(g), UVW_EMALFORMED);
  cr_assert_eq(uvw_error_code(uvw_last_error()), UVW_EMALFORMED);
  cr_assert_eq(uvw_context_chain(ctx), chain);
  cr_assert_eq(uvw_value_as_int(uvw_context_lookup(ctx, v)), 5);
  wt_leave(ctx);
  uvw_frame_free(g);
  uvw_frame_free(f);
  uvw_value_unref(val);
}

Test(frames, on_error_payloads_the_decode_error_goes_to_the_context_tail) {
  static const uint8_t junk[] = {0xff, 0xff, 0xff};
  uvw_error_t *err = sample_error(); /* outer -> context "while handling" */
  const uvw_frame_kind_t kinds[] = {UVW_FRAME_THROW, UVW_FRAME_EXCEPTION};
  for (int k = 0; k < 2; k++) {
    uvw_frame_t *f = uvw_frame_new(kinds[k], 8);
    uvw_frame_set_error(f, err);
    uvw_frame_set_manifest_bytes(f, junk, sizeof junk);
    uvw_frame_t *g = roundtrip(f);
    cr_assert_eq(uvw_frame_manifest_state(g), UVW_FRAME_MANIFEST_ERROR);
    const uvw_error_t *e = uvw_frame_error(g);
    cr_assert_str_eq(uvw_error_message(e), "outer", "the routine's error stays in front");
    const uvw_error_t *c1 = uvw_error_context(e);
    cr_assert_str_eq(uvw_error_message(c1), "while handling");
    const uvw_error_t *tail = uvw_error_context(c1);
    cr_assert_not_null(tail);
    cr_assert_eq(uvw_error_code(tail), UVW_EMALFORMED);
    cr_assert_eq(uvw_error_kind(tail), UVW_KIND_SERIALIZATION_ERROR);
    cr_assert_null(uvw_error_context(tail));
    uvw_context_t *ctx = wt_enter_new();
    cr_assert_eq(uvw_frame_mount(g), UVW_EMALFORMED);
    cr_assert_str_eq(uvw_error_message(uvw_last_error()), "outer", "mount reports the payload to raise");
    cr_assert(!uvw_context_is_armed(ctx));
    wt_leave(ctx);
    uvw_frame_free(g);
    uvw_frame_free(f);
  }
  uvw_error_unref(err);
}

/* Row 16: a real ChainContention crosses the wire with every field. */
static void *read_foreign(void *arg) {
  uvw_value_t *out;
  uvw_context_enter(arg);
  uvw_get(uvw_var_find("wire.frames", "v"), &out);
  uvw_context_exit(arg);
  return uvw_error_ref(uvw_last_error());
}

Test(frames, chain_contention_survives_with_every_field) {
  uvw_var_t *v;
  uvw_var_declare("wire.frames", "v", NULL, &v);
  uvw_context_t *ctx = wt_enter_new();
  wt_set(v, uvw_value_int(1));
  cr_assert_eq(uvw_context_exit(ctx), 0);
  pthread_t th;
  void *p;
  pthread_create(&th, NULL, read_foreign, ctx);
  pthread_join(th, &p);
  uvw_error_t *cc = p;
  cr_assert_eq(uvw_error_kind(cc), UVW_KIND_CHAIN_CONTENTION);
  uvw_frame_t *f = uvw_frame_new(UVW_FRAME_EXCEPTION, 1);
  uvw_frame_set_error(f, cc);
  uvw_frame_t *g = roundtrip(f);
  const uvw_error_t *e = uvw_frame_error(g);
  cr_assert_eq(uvw_error_kind(e), UVW_KIND_CHAIN_CONTENTION);
  cr_assert_eq(uvw_error_code(e), UVW_ECONTENTION);
  cr_assert_str_eq(uvw_error_message(e), uvw_error_message(cc));
  cr_assert_eq(uvw_error_field_count(e), uvw_error_field_count(cc));
  cr_assert_geq(uvw_error_field_count(e), 6);
  for (size_t i = 0; i < uvw_error_field_count(cc); i++) {
    cr_assert_str_eq(uvw_error_field_name(e, i), uvw_error_field_name(cc, i));
    cr_assert_str_eq(uvw_error_field_value(e, i), uvw_error_field_value(cc, i));
  }
  cr_assert_str_eq(uvw_error_field(e, "kind"), "thread");
  uvw_frame_free(g);
  uvw_frame_free(f);
  uvw_error_unref(cc);
  uvw_context_unref(ctx);
}

Test(frames, a_foreign_error_class_keeps_its_name) {
  Uvwool__Error pe = UVWOOL__ERROR__INIT;
  pe.type = "ZeroDivisionError";
  pe.message = "division by zero";
  Uvwool__Exception ex = UVWOOL__EXCEPTION__INIT;
  ex.error = &pe;
  Uvwool__Response resp = UVWOOL__RESPONSE__INIT;
  resp.kind_case = UVWOOL__RESPONSE__KIND_EXCEPTION;
  resp.exception = &ex;
  size_t len;
  uint8_t *b = wt_pack(&resp.base, &len);
  uvw_frame_t *g;
  cr_assert_eq(uvw_frame_decode_response(b, len, &g), 0);
  free(b);
  const uvw_error_t *e = uvw_frame_error(g);
  cr_assert_eq(uvw_error_kind(e), UVW_KIND_WOOL_ERROR);
  cr_assert_str_eq(uvw_error_field(e, "wire_type"), "ZeroDivisionError");
  uvw_frame_t *f = uvw_frame_new(UVW_FRAME_EXCEPTION, 2);
  uvw_frame_set_error(f, e);
  b = (uint8_t *)NULL;
  void *pb;
  cr_assert_eq(uvw_frame_encode(f, &pb, &len), 0);
  Uvwool__Response *r = uvwool__response__unpack(NULL, len, pb);
  cr_assert_str_eq(r->exception->error->type, "ZeroDivisionError");
  cr_assert_eq(r->exception->error->n_fields, 0, "the bookkeeping field is not sent");
  uvwool__response__free_unpacked(r, NULL);
  uvw_free(pb);
  uvw_frame_free(f);
  uvw_frame_free(g);
}

Test(frames, hostile_nesting_is_refused_without_recursion) {
  /* Error.cause nested 200000 deep: lengths computed inside out, headers
   * written outside in (each level is 0x2a <varint length of the rest>). */
  size_t depth = 200000, n = 0;
  size_t *lens = malloc((depth + 1) * sizeof *lens);
  lens[0] = 0;
  for (size_t i = 1; i <= depth; i++) {
    size_t l = lens[i - 1], hdr = 2;
    while (l > 0x7f) {
      l >>= 7;
      hdr++;
    }
    lens[i] = lens[i - 1] + hdr;
  }
  n = lens[depth];
  uint8_t *buf = malloc(n), *tmp = NULL;
  size_t o = 0;
  for (size_t i = depth; i >= 1; i--) {
    size_t l = lens[i - 1];
    buf[o++] = 0x2a;
    do {
      buf[o++] = (uint8_t)((l & 0x7f) | (l > 0x7f ? 0x80 : 0));
      l >>= 7;
    } while (l);
  }
  cr_assert_eq(o, n);
  free(lens);
  /* Exception{error=1} then Response{exception=5}. */
  uint8_t *frame = malloc(n + 32);
  size_t k = 0;
  frame[k++] = 0x2a; /* Response field 5, length-delimited */
  size_t inner = n + 1 + (n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4), l = inner;
  do {
    frame[k++] = (uint8_t)((l & 0x7f) | (l > 0x7f ? 0x80 : 0));
    l >>= 7;
  } while (l);
  frame[k++] = 0x0a; /* Exception field 1 */
  l = n;
  do {
    frame[k++] = (uint8_t)((l & 0x7f) | (l > 0x7f ? 0x80 : 0));
    l >>= 7;
  } while (l);
  memcpy(frame + k, buf, n);
  k += n;
  uvw_frame_t *g;
  cr_assert_eq(uvw_frame_decode_response(frame, k, &g), UVW_EMALFORMED);
  cr_assert_not_null(strstr(uvw_error_message(uvw_last_error()), "deeply"));
  free(frame);
  free(buf);
  free(tmp);
}

Test(frames, size_limit_on_encode_and_decode) {
  uvw_frame_t *f = uvw_frame_new(UVW_FRAME_SEND, 1);
  char big[4096];
  memset(big, 'x', sizeof big);
  uvw_value_t *v = uvw_value_string(big, sizeof big);
  uvw_frame_set_value(f, v);
  size_t len;
  uint8_t *b = encode(f, &len);
  uvw_wire_set_max_size(1024);
  void *p;
  size_t plen;
  cr_assert_eq(uvw_frame_encode(f, &p, &plen), UVW_ETOOBIG);
  uvw_frame_t *g;
  cr_assert_eq(uvw_frame_decode_request(b, len, &g), UVW_ETOOBIG);
  cr_assert_eq(uvw_error_kind(uvw_last_error()), UVW_KIND_SERIALIZATION_ERROR);
  uvw_wire_set_max_size(0);
  cr_assert_eq(uvw_wire_max_size(), (size_t)16 << 20);
  uvw_free(b);
  uvw_frame_free(f);
  uvw_value_unref(v);
}

Test(frames, truncated_frames_fail_cleanly) {
  uvw_error_t *err = sample_error();
  uvw_frame_t *f = uvw_frame_new(UVW_FRAME_THROW, 123456789);
  uvw_frame_set_error(f, err);
  size_t len;
  uint8_t *b = encode(f, &len);
  for (size_t cut = 0; cut < len; cut++) {
    uvw_frame_t *g = NULL;
    int rc = uvw_frame_decode_request(b, cut, &g);
    cr_assert(rc == UVW_EMALFORMED || rc == 0, "cut %zu: %d", cut, rc);
    uvw_frame_free(g);
  }
  uvw_free(b);
  uvw_frame_free(f);
  uvw_error_unref(err);
}

Test(frames, builders_reject_parts_a_kind_does_not_have) {
  uvw_frame_t *next = uvw_frame_new(UVW_FRAME_NEXT, 1);
  uvw_value_t *v = uvw_value_int(1);
  cr_assert_eq(uvw_frame_set_value(next, v), UVW_EINVAL);
  cr_assert_eq(uvw_frame_set_routine(next, "r"), UVW_EINVAL);
  cr_assert_eq(uvw_frame_set_done(next, 1), UVW_EINVAL);
  cr_assert_null(uvw_frame_new(UVW_FRAME_NONE, 1));
  uvw_frame_t *task = uvw_frame_new(UVW_FRAME_TASK, 1);
  void *p;
  size_t len;
  cr_assert_eq(uvw_frame_encode(task, &p, &len), UVW_EINVAL, "a Task needs its routine");
  uvw_frame_t *exc = uvw_frame_new(UVW_FRAME_EXCEPTION, 1);
  cr_assert_eq(uvw_frame_encode(exc, &p, &len), UVW_EINVAL, "an Exception needs its error");
  uvw_frame_free(exc);
  uvw_frame_free(task);
  uvw_frame_free(next);
  uvw_value_unref(v);
}

/* ---- hostile frames (issue 11) ------------------------------------------------ */

#include "wire_frame.h"

/* A manifest of n undeclared reset entries (ns, "<prefix><i>"). */
static uint8_t *junk_manifest(const char *ns, const char *prefix, size_t n, size_t *len) {
  Uvwool__ChainManifest m = UVWOOL__CHAIN_MANIFEST__INIT;
  Uvwool__Entry *entries = calloc(n, sizeof(*entries));
  Uvwool__Entry **ptrs = calloc(n, sizeof(*ptrs));
  char **names = calloc(n, sizeof(*names));
  for (size_t i = 0; i < n; i++) {
    uvwool__entry__init(&entries[i]);
    names[i] = malloc(32);
    snprintf(names[i], 32, "%s%zu", prefix, i);
    entries[i].namespace_ = (char *)ns;
    entries[i].name = names[i];
    ptrs[i] = &entries[i];
  }
  m.n_entries = n;
  m.entries = ptrs;
  *len = uvwool__chain_manifest__get_packed_size(&m);
  uint8_t *b = malloc(*len ? *len : 1);
  uvwool__chain_manifest__pack(&m, b);
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  free(ptrs);
  free(entries);
  return b;
}

Test(frames, a_hostile_result_leaves_no_stub_in_the_caller) {
  size_t have = uvw_wire_stub_count(), mlen, len;
  uint8_t *mb = junk_manifest(tu_namespace(), "junk", 1100, &mlen);
  uvw_frame_t *f = uvw_frame_new(UVW_FRAME_RESULT, 9);
  cr_assert_eq(uvw_frame_set_manifest_bytes(f, mb, mlen), 0);
  uint8_t *b = encode(f, &len);
  uvw_frame_free(f);
  free(mb);
  uvw_frame_t *g;
  cr_assert_eq(uvw_frame_decode_response(b, len, &g), 0);
  uvw_free(b);
  cr_assert_eq(uvw_frame_manifest_state(g), UVW_FRAME_MANIFEST_ERROR, "over the per-decode budget");
  cr_assert_eq(uvw_error_code(uvw_frame_manifest_error(g)), UVW_ESTUBCAP);
  cr_assert_eq(uvw_wire_stub_count(), have, "the failed decode left nothing behind");
  uvw_frame_free(g);
  cr_assert_eq(uvw_wire_stub_count(), have);
}

Test(frames, a_deferred_request_decodes_its_manifest_only_when_asked) {
  size_t have = uvw_wire_stub_count(), mlen, len;
  uint8_t *mb = junk_manifest(tu_namespace(), "later", 10, &mlen);
  uvw_frame_t *f = uvw_frame_new(UVW_FRAME_NEXT, 3);
  cr_assert_eq(uvw_frame_set_manifest_bytes(f, mb, mlen), 0);
  uint8_t *b = encode(f, &len);
  uvw_frame_free(f);
  free(mb);
  uvw_frame_t *g;
  cr_assert_eq(uvw__frame_decode_request_deferred(b, len, &g), 0);
  uvw_free(b);
  cr_assert_eq(uvw_frame_manifest_state(g), UVW_FRAME_MANIFEST_ABSENT);
  cr_assert_eq(uvw__frame_kept_bytes(g), mlen);
  cr_assert_eq(uvw_wire_stub_count(), have, "nothing decoded yet");
  size_t created = 0;
  cr_assert_eq(uvw__frame_decode_manifest(g, 4, &created, NULL), 0);
  cr_assert_eq(uvw_frame_manifest_state(g), UVW_FRAME_MANIFEST_ERROR, "a budget of 4 for 10 new names");
  cr_assert_eq(uvw_wire_stub_count(), have);
  cr_assert_eq(uvw__frame_kept_bytes(g), 0);
  uvw_frame_free(g);
}

static size_t reallocs;
static void *counting_realloc(void *p, size_t n) {
  reallocs++;
  return realloc(p, n);
}

Test(frames, an_error_of_50000_fields_decodes_and_routine_names_are_bounded) {
  /* Built with protobuf-c (the decode is what the issue measured). */
  enum { N = 50000 };
  Uvwool__ErrorField *fs = calloc(N, sizeof(*fs));
  Uvwool__ErrorField **fp = calloc(N, sizeof(*fp));
  char (*vals)[8] = calloc(N, sizeof(*vals));
  for (int i = 0; i < N; i++) {
    uvwool__error_field__init(&fs[i]);
    snprintf(vals[i], sizeof vals[i], "%d", i);
    fs[i].name = "f";
    fs[i].value = vals[i];
    fp[i] = &fs[i];
  }
  Uvwool__Error err = UVWOOL__ERROR__INIT;
  err.type = "SerializationError";
  err.message = "many fields";
  err.n_fields = N;
  err.fields = fp;
  Uvwool__Exception exc = UVWOOL__EXCEPTION__INIT;
  exc.error = &err;
  Uvwool__Response resp = UVWOOL__RESPONSE__INIT;
  resp.has_dispatch_id = 1;
  resp.dispatch_id = 1;
  resp.kind_case = UVWOOL__RESPONSE__KIND_EXCEPTION;
  resp.exception = &exc;
  size_t len = uvwool__response__get_packed_size(&resp);
  uint8_t *b = malloc(len);
  uvwool__response__pack(&resp, b);
  free(fs);
  free(fp);
  free(vals);
  uvw_frame_t *g;
  /* Compatible with the default allocator (libc), so swapping is safe. */
  cr_assert_eq(uvw_replace_allocator(malloc, counting_realloc, calloc, free), 0);
  reallocs = 0;
  int rc = uvw_frame_decode_response(b, len, &g);
  size_t grown = reallocs;
  uvw_replace_allocator(malloc, realloc, calloc, free);
  cr_assert_eq(rc, 0, "%s", uvw_error_message(uvw_last_error()));
  free(b);
  cr_assert_lt(grown, 100, "amortised growth: %zu reallocations for 50,000 fields", grown);
  cr_assert_eq(uvw_error_field_count(uvw_frame_error(g)), N);
  cr_assert_str_eq(uvw_error_field_value(uvw_frame_error(g), N - 1), "49999");
  uvw_frame_free(g);
  uvw_frame_t *f;
  /* A 256-byte routine name is refused (a Nack would echo it). */
  char name[257];
  memset(name, 'r', 256);
  name[256] = '\0';
  f = uvw_frame_new(UVW_FRAME_TASK, 1);
  cr_assert_eq(uvw_frame_set_routine(f, name), 0);
  b = encode(f, &len);
  uvw_frame_free(f);
  cr_assert_eq(uvw_frame_decode_request(b, len, &g), UVW_EMALFORMED);
  uvw_free(b);
}

Test(frames, a_frame_of_more_than_131072_messages_is_refused_before_unpacking) {
  /* A Task of 200,000 one-integer arguments: four bytes each. */
  size_t n = 200000, len = 0;
  uint8_t *t = malloc(4 * n + 16);
  t[len++] = 0x0a; /* routine "r" */
  t[len++] = 1;
  t[len++] = 'r';
  for (size_t i = 0; i < n; i++) {
    memcpy(t + len, "\x12\x02\x18\x02", 4);
    len += 4;
  }
  /* Request{dispatch_id: 1, task: t} */
  size_t blen = 0;
  uint8_t *b = malloc(len + 16);
  b[blen++] = 0x08;
  b[blen++] = 1;
  b[blen++] = 0x12;
  for (size_t v = len; ; v >>= 7) {
    b[blen++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    if (v <= 0x7f) break;
  }
  memcpy(b + blen, t, len);
  blen += len;
  free(t);
  uvw_frame_t *f = (uvw_frame_t *)1;
  cr_assert_eq(uvw_frame_decode_request(b, blen, &f), UVW_ETOOBIG);
  cr_assert_null(f);
  cr_assert_str_eq(uvw_error_field(uvw_last_error(), "limit"), "131072");
  free(b);
}
