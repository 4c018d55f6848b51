/* Dispatch frames (docs/semantics.md §8): Request = Task | Next | Send | Throw,
 * Response = Ack | Nack | Result | Exception, each with a dispatch id and,
 * on the mid-stream kinds, the sender's manifest.
 *
 * The manifest rides as bytes inside the frame so that a bad manifest never
 * makes the frame undecodable: its error is kept and deferred to mount
 * time, and on error payloads it is appended to the tail of the payload's
 * context chain so the sender's own error stays in front. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "pbscan.h"
#include "value.h"
#include "wire_frame.h"
#include "wire_int.h"

struct uvw_frame_s {
  uvw_frame_kind_t kind;
  uint64_t dispatch_id;
  char *routine;
  size_t nargs, argcap;
  uvw_value_t **args;
  int has_timeout;
  uint64_t timeout_ms;
  uvw_value_t *value;
  int done;
  uvw_error_t *error;
  /* Builder side: encoded manifest bytes to send. */
  int has_mbytes;
  uint8_t *mbytes;
  size_t mlen;
  /* Decoder side. A deferred decode keeps the manifest's bytes in
   * mbytes/mlen (has_mbytes 0: they are not for sending) until
   * uvw__frame_decode_manifest. */
  int deferred;
  int kept_delta; /* the kept bytes are a ManifestDelta, for the link to resolve */
  uvw_frame_manifest_state_t mstate;
  uvw_manifest_t *manifest;
  uvw_error_t *merror;
  /* Decoder side: delta manifests' handshake and resync fields. */
  uint32_t delta_chains;
  char **resync;
  size_t nresync;
};

static int is_request(uvw_frame_kind_t k) { return k >= UVW_FRAME_TASK && k <= UVW_FRAME_THROW; }
static int carries_manifest(uvw_frame_kind_t k) {
  return k == UVW_FRAME_NEXT || k == UVW_FRAME_SEND || k == UVW_FRAME_THROW || k == UVW_FRAME_RESULT ||
         k == UVW_FRAME_EXCEPTION;
}
static int carries_error(uvw_frame_kind_t k) {
  return k == UVW_FRAME_THROW || k == UVW_FRAME_NACK || k == UVW_FRAME_EXCEPTION;
}
static int carries_value(uvw_frame_kind_t k) { return k == UVW_FRAME_SEND || k == UVW_FRAME_RESULT; }

static const char *kind_name(uvw_frame_kind_t k) {
  static const char *names[] = {"none", "Task", "Next", "Send", "Throw", "Ack", "Nack", "Result", "Exception"};
  return k >= UVW_FRAME_NONE && k <= UVW_FRAME_EXCEPTION ? names[k] : "invalid";
}

static int bad_use(const uvw_frame_t *f, const char *what) {
  uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "frame of kind %s: %s", f ? kind_name(f->kind) : "(null)",
                 what);
  return UVW_EINVAL;
}

uvw_frame_t *uvw_frame_new(uvw_frame_kind_t kind, uint64_t dispatch_id) {
  if (kind <= UVW_FRAME_NONE || kind > UVW_FRAME_EXCEPTION) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "uvw_frame_new: bad frame kind %d", (int)kind);
    return NULL;
  }
  uvw_frame_t *f = uvw__calloc(1, sizeof(*f));
  if (f == NULL) {
    uvw__error_nomem("frame");
    return NULL;
  }
  f->kind = kind;
  f->dispatch_id = dispatch_id;
  return f;
}

void uvw_frame_free(uvw_frame_t *f) {
  if (f == NULL) return;
  uvw__free(f->routine);
  for (size_t i = 0; i < f->nargs; i++) uvw__value_unref(f->args[i]);
  uvw__free(f->args);
  uvw__value_unref(f->value);
  uvw_error_unref(f->error);
  uvw__free(f->mbytes);
  uvw_manifest_free(f->manifest);
  uvw_error_unref(f->merror);
  for (size_t i = 0; i < f->nresync; i++) uvw__free(f->resync[i]);
  uvw__free(f->resync);
  uvw__free(f);
}

/* ---- builders ------------------------------------------------------------------- */

int uvw_frame_set_routine(uvw_frame_t *f, const char *routine) {
  if (f == NULL || f->kind != UVW_FRAME_TASK || routine == NULL || routine[0] == '\0')
    return bad_use(f, "only a Task has a routine, and it must be a non-empty string");
  char *copy = uvw__strndup(routine, strlen(routine));
  if (copy == NULL) return uvw__error_nomem("routine name");
  uvw__free(f->routine);
  f->routine = copy;
  return 0;
}

int uvw_frame_add_arg(uvw_frame_t *f, uvw_value_t *arg) {
  if (f == NULL || f->kind != UVW_FRAME_TASK || arg == NULL || uvw__value_is_sentinel(arg))
    return bad_use(f, "only a Task has arguments, and an argument is a real value");
  if (f->nargs == f->argcap) {
    size_t cap = f->argcap ? f->argcap * 2 : 4;
    uvw_value_t **args = uvw__realloc(f->args, cap * sizeof(*args));
    if (args == NULL) return uvw__error_nomem("frame argument");
    f->args = args;
    f->argcap = cap;
  }
  f->args[f->nargs++] = uvw__value_ref(arg);
  return 0;
}

int uvw_frame_set_dispatch_timeout(uvw_frame_t *f, uint64_t ms) {
  if (f == NULL || f->kind != UVW_FRAME_TASK) return bad_use(f, "only a Task carries a runtime context");
  f->has_timeout = 1;
  f->timeout_ms = ms;
  return 0;
}

int uvw_frame_set_value(uvw_frame_t *f, uvw_value_t *value) {
  if (f == NULL || !carries_value(f->kind) || value == NULL || uvw__value_is_sentinel(value))
    return bad_use(f, "only Send and Result carry a value, and it is a real value");
  uvw__value_unref(f->value);
  f->value = uvw__value_ref(value);
  return 0;
}

int uvw_frame_set_done(uvw_frame_t *f, int done) {
  if (f == NULL || f->kind != UVW_FRAME_RESULT) return bad_use(f, "only a Result has a done flag");
  f->done = done != 0;
  return 0;
}

int uvw_frame_set_error(uvw_frame_t *f, const uvw_error_t *error) {
  if (f == NULL || !carries_error(f->kind) || error == NULL)
    return bad_use(f, "only Throw, Nack and Exception carry an error");
  uvw_error_unref(f->error);
  f->error = uvw_error_ref(error);
  return 0;
}

static int set_mbytes(uvw_frame_t *f, void *bytes, size_t len) {
  uvw__free(f->mbytes);
  f->mbytes = bytes;
  f->mlen = len;
  f->has_mbytes = 1;
  return 0;
}

int uvw_frame_set_manifest(uvw_frame_t *f, uvw_context_t *ctx) {
  if (f == NULL || !carries_manifest(f->kind))
    return bad_use(f, "only Next, Send, Throw, Result and Exception carry a manifest");
  void *bytes;
  size_t len;
  int rc = uvw__manifest_encode(ctx, 0, &bytes, &len);
  if (rc != 0) return rc;
  if (bytes == NULL) { /* unarmed sender: absent, not an empty manifest */
    uvw__free(f->mbytes);
    f->mbytes = NULL;
    f->mlen = 0;
    f->has_mbytes = 0;
    return 0;
  }
  return set_mbytes(f, bytes, len);
}

int uvw_frame_set_manifest_bytes(uvw_frame_t *f, const void *data, size_t len) {
  if (f == NULL || !carries_manifest(f->kind) || (data == NULL && len != 0))
    return bad_use(f, "only Next, Send, Throw, Result and Exception carry a manifest");
  uint8_t *copy = NULL;
  if (len != 0 && (copy = uvw__malloc(len)) == NULL) return uvw__error_nomem("manifest bytes");
  if (len) memcpy(copy, data, len);
  return set_mbytes(f, copy, len);
}

/* ---- encode ----------------------------------------------------------------------- */

typedef struct {
  Uvwool__Value *values;
  Uvwool__Value **ptrs;
  Uvwool__Opaque *opaques;
  uvw_value_t **holds;
  size_t n;
} vals_t;

static void vals_free(vals_t *v) {
  for (size_t i = 0; i < v->n; i++) uvw__value_unref(v->holds[i]);
  uvw__free(v->values);
  uvw__free(v->ptrs);
  uvw__free(v->opaques);
  uvw__free(v->holds);
}

static int vals_fill(vals_t *v, uvw_value_t *const *src, size_t n, const char *part) {
  size_t m = n ? n : 1;
  v->values = uvw__malloc(m * sizeof(*v->values));
  v->ptrs = uvw__malloc(m * sizeof(*v->ptrs));
  v->opaques = uvw__malloc(m * sizeof(*v->opaques));
  v->holds = uvw__calloc(m, sizeof(*v->holds));
  if (!v->values || !v->ptrs || !v->opaques || !v->holds) return uvw__error_nomem("frame");
  for (size_t i = 0; i < n; i++) {
    char why[160];
    uvwool__value__init(&v->values[i]);
    if (uvw__value_to_pb(src[i], &v->values[i], &v->opaques[i], &v->holds[i], why, sizeof(why)) != 0) {
      v->n = i;
      uvw_error_t *e = uvw__error_set(UVW_ESERIALIZE, UVW_KIND_SERIALIZATION_ERROR, "cannot encode %s %zu: %s",
                                      part, i, why);
      uvw__error_field(e, "part", "%s", part);
      uvw__error_field(e, "index", "%zu", i);
      uvw__error_field(e, "reason", "%s", why);
      return UVW_ESERIALIZE;
    }
    v->ptrs[i] = &v->values[i];
  }
  v->n = n;
  return 0;
}

static int encode(const uvw_frame_t *f, int with_manifest, void **out, size_t *len) {
  if (f == NULL || out == NULL || len == NULL) return bad_use(f, "uvw_frame_encode: NULL argument");
  *out = NULL;
  *len = 0;
  if (f->kind == UVW_FRAME_TASK && f->routine == NULL) return bad_use(f, "a Task needs a routine name");
  if (carries_error(f->kind) && f->error == NULL) return bad_use(f, "this kind needs an error payload");

  vals_t vals = {0};
  Uvwool__Error *err = NULL;
  int rc = 0;
  if (f->kind == UVW_FRAME_TASK)
    rc = vals_fill(&vals, f->args, f->nargs, "argument");
  else if (carries_value(f->kind)) {
    uvw_value_t *v = f->value ? f->value : uvw_value_nil();
    rc = vals_fill(&vals, &v, 1, "value");
  }
  if (rc == 0 && carries_error(f->kind)) rc = uvw__error_to_pb(f->error, &err);
  if (rc != 0) {
    vals_free(&vals);
    return rc;
  }

  Uvwool__RuntimeContext runtime = UVWOOL__RUNTIME_CONTEXT__INIT;
  Uvwool__Task task = UVWOOL__TASK__INIT;
  Uvwool__Next next = UVWOOL__NEXT__INIT;
  Uvwool__Send send = UVWOOL__SEND__INIT;
  Uvwool__Throw thrown = UVWOOL__THROW__INIT;
  Uvwool__Ack ack = UVWOOL__ACK__INIT;
  Uvwool__Nack nack = UVWOOL__NACK__INIT;
  Uvwool__Result result = UVWOOL__RESULT__INIT;
  Uvwool__Exception exc = UVWOOL__EXCEPTION__INIT;
  ProtobufCBinaryData mbytes = {f->mlen, f->mbytes};
  protobuf_c_boolean has_mbytes = f->has_mbytes && with_manifest;
  if (is_request(f->kind)) {
    Uvwool__Request req = UVWOOL__REQUEST__INIT;
    req.has_dispatch_id = 1;
    req.dispatch_id = f->dispatch_id;
    req.has_manifest = has_mbytes;
    req.manifest = mbytes;
    switch (f->kind) {
      case UVW_FRAME_TASK:
        task.routine = f->routine;
        task.n_args = vals.n;
        task.args = vals.ptrs;
        if (f->has_timeout) {
          runtime.has_dispatch_timeout_ms = 1;
          runtime.dispatch_timeout_ms = f->timeout_ms;
          task.runtime = &runtime;
        }
        req.kind_case = UVWOOL__REQUEST__KIND_TASK;
        req.task = &task;
        break;
      case UVW_FRAME_NEXT:
        req.kind_case = UVWOOL__REQUEST__KIND_NEXT;
        req.next = &next;
        break;
      case UVW_FRAME_SEND:
        send.value = vals.ptrs[0];
        req.kind_case = UVWOOL__REQUEST__KIND_SEND;
        req.send = &send;
        break;
      default:
        thrown.error = err;
        req.kind_case = UVWOOL__REQUEST__KIND_THROWN;
        req.thrown = &thrown;
        break;
    }
    rc = uvw__wire_pack(&req.base, "request frame", out, len);
  } else {
    Uvwool__Response resp = UVWOOL__RESPONSE__INIT;
    resp.has_dispatch_id = 1;
    resp.dispatch_id = f->dispatch_id;
    resp.has_manifest = has_mbytes;
    resp.manifest = mbytes;
    switch (f->kind) {
      case UVW_FRAME_ACK:
        resp.kind_case = UVWOOL__RESPONSE__KIND_ACK;
        resp.ack = &ack;
        break;
      case UVW_FRAME_NACK:
        nack.error = err;
        resp.kind_case = UVWOOL__RESPONSE__KIND_NACK;
        resp.nack = &nack;
        break;
      case UVW_FRAME_RESULT:
        result.value = vals.ptrs[0];
        result.has_done = f->done;
        result.done = f->done;
        resp.kind_case = UVWOOL__RESPONSE__KIND_RESULT;
        resp.result = &result;
        break;
      default:
        exc.error = err;
        resp.kind_case = UVWOOL__RESPONSE__KIND_EXCEPTION;
        resp.exception = &exc;
        break;
    }
    rc = uvw__wire_pack(&resp.base, "response frame", out, len);
  }
  uvw__error_pb_free(err);
  vals_free(&vals);
  return rc;
}

int uvw_frame_encode(const uvw_frame_t *f, void **out, size_t *len) { return encode(f, 1, out, len); }

int uvw__frame_encode_bare(const uvw_frame_t *f, void **out, size_t *len, uint8_t **mbytes, size_t *mlen) {
  *mbytes = NULL;
  *mlen = 0;
  int rc = encode(f, 0, out, len);
  if (rc != 0 || !f->has_mbytes) return rc;
  /* The whole frame must fit the limit as uvw_frame_encode's would. */
  size_t whole = *len + uvw__pb_bytes_size(UVW__FRAME_FIELD_MANIFEST, f->mlen);
  if (whole > uvw_wire_max_size() || (*mbytes = uvw__malloc(f->mlen ? f->mlen : 1)) == NULL) {
    uvw__free(*out);
    *out = NULL;
    *len = 0;
    if (*mbytes == NULL && whole <= uvw_wire_max_size()) return uvw__error_nomem("manifest bytes");
    return uvw__wire_too_big(is_request(f->kind) ? "request frame" : "response frame", whole);
  }
  if (f->mlen) memcpy(*mbytes, f->mbytes, f->mlen);
  *mlen = f->mlen;
  return 0;
}

/* ---- decode ------------------------------------------------------------------------ */

static int frame_malformed(const char *frame, const char *reason) {
  uvw_error_t *e = uvw__error_set(UVW_EMALFORMED, UVW_KIND_SERIALIZATION_ERROR, "malformed %s: %s", frame, reason);
  uvw__error_field(e, "what", "%s", frame);
  uvw__error_field(e, "reason", "%s", reason);
  return UVW_EMALFORMED;
}

static int decode_value(const Uvwool__Value *pb, const char *part, size_t index, uvw_value_t **out) {
  if (pb == NULL) { /* an absent Send/Result value means nil */
    *out = uvw_value_nil();
    return 0;
  }
  char why[160];
  int rc = uvw__value_from_pb(pb, out, why, sizeof(why));
  if (rc == -1) {
    uvw_error_t *e = uvw__error_set(UVW_ESERIALIZE, UVW_KIND_SERIALIZATION_ERROR, "cannot decode %s %zu: %s", part,
                                    index, why);
    uvw__error_field(e, "part", "%s", part);
    uvw__error_field(e, "index", "%zu", index);
    uvw__error_field(e, "reason", "%s", why);
    return UVW_ESERIALIZE;
  }
  return rc;
}

/* The manifest part: decoded, or its error kept for mount time. Only an
 * allocation failure fails the frame itself (it says nothing about the
 * data). */
static int decode_manifest(uvw_frame_t *f, const ProtobufCBinaryData *bytes, size_t budget, size_t *created,
                           uvw__mcache_t *cache) {
  int rc = uvw__mcache_decode(cache, bytes->data, bytes->len, budget, &f->manifest, created);
  if (rc == 0) {
    f->mstate = UVW_FRAME_MANIFEST_DECODED;
    return 0;
  }
  uvw__frame_fail_manifest(f);
  return rc == UVW_ENOMEM ? rc : 0;
}

/* Keep the manifest's bytes for a decode once the dispatch is known. */
static int keep_manifest(uvw_frame_t *f, const ProtobufCBinaryData *bytes, int delta) {
  uint8_t *copy = uvw__malloc(bytes->len ? bytes->len : 1);
  if (copy == NULL) return uvw__error_nomem("manifest bytes");
  if (bytes->len) memcpy(copy, bytes->data, bytes->len);
  f->mbytes = copy;
  f->mlen = bytes->len;
  f->deferred = 1;
  f->kept_delta = delta;
  return 0;
}

/* A delta that no connection's book resolves (a frame decoded on its own):
 * the manifest's error, kept for mount time like a bad manifest's. */
static int delta_unresolvable(uvw_frame_t *f) {
  uvw_error_t *e = uvw__error_set(UVW_EMALFORMED, UVW_KIND_SERIALIZATION_ERROR,
                                  "malformed manifest delta: a delta is resolved only by the connection it "
                                  "arrived on (decode the frame there)");
  uvw__error_field(e, "what", "manifest delta");
  uvw__error_field(e, "reason", "no connection state");
  uvw__frame_fail_manifest(f);
  return 0;
}

int uvw__frame_decode_manifest(uvw_frame_t *f, size_t stub_budget, size_t *created, uvw__mcache_t *cache) {
  if (created) *created = 0;
  if (f == NULL || !f->deferred) return 0;
  if (f->kept_delta) return delta_unresolvable(f);
  ProtobufCBinaryData bytes = {f->mlen, f->mbytes};
  int rc = decode_manifest(f, &bytes, stub_budget, created, cache);
  f->deferred = 0;
  uvw__free(f->mbytes);
  f->mbytes = NULL;
  f->mlen = 0;
  return rc;
}

size_t uvw__frame_kept_bytes(const uvw_frame_t *f) { return f && f->deferred ? f->mlen : 0; }

const uint8_t *uvw__frame_kept(const uvw_frame_t *f, size_t *len, int *is_delta) {
  *len = f->deferred ? f->mlen : 0;
  *is_delta = f->deferred && f->kept_delta;
  return f->deferred ? f->mbytes : NULL;
}

void uvw__frame_replace_kept(uvw_frame_t *f, uint8_t *full, size_t len) {
  uvw__free(f->mbytes);
  f->mbytes = full;
  f->mlen = len;
  f->deferred = 1;
  f->kept_delta = 0;
}

void uvw__frame_fail_manifest(uvw_frame_t *f) {
  uvw__free(f->mbytes);
  f->mbytes = NULL;
  f->mlen = 0;
  f->deferred = 0;
  f->kept_delta = 0;
  f->mstate = UVW_FRAME_MANIFEST_ERROR;
  uvw_error_unref(f->merror);
  f->merror = uvw_error_ref(uvw_last_error());
  if (f->error != NULL) {
    uvw_error_t *tail = f->error;
    while (tail->context != NULL) tail = tail->context;
    uvw__error_set_context(tail, uvw_error_ref(f->merror));
  }
}

uint32_t uvw__frame_delta_chains(const uvw_frame_t *f) { return f->delta_chains; }
size_t uvw__frame_resync_count(const uvw_frame_t *f) { return f->nresync; }
const char *uvw__frame_resync(const uvw_frame_t *f, size_t i) { return i < f->nresync ? f->resync[i] : NULL; }

static int decode_error(const Uvwool__Error *pb, const char *frame, uvw_frame_t *f) {
  if (pb == NULL) return frame_malformed(frame, "an error frame without its error payload");
  return uvw__error_from_pb(pb, &f->error);
}

static int decode_task(const Uvwool__Task *t, uvw_frame_t *f) {
  if (t->routine == NULL || t->routine[0] == '\0') return frame_malformed("request frame", "a Task without a routine");
  if (strnlen(t->routine, UVW__WIRE_MAX_ROUTINE_BYTES + 1) > UVW__WIRE_MAX_ROUTINE_BYTES)
    return frame_malformed("request frame", "a routine name longer than 255 bytes");
  if ((f->routine = uvw__strndup(t->routine, strlen(t->routine))) == NULL) return uvw__error_nomem("routine name");
  if (t->n_args > 0) {
    if ((f->args = uvw__calloc(t->n_args, sizeof(*f->args))) == NULL) return uvw__error_nomem("frame arguments");
    f->argcap = t->n_args;
    for (size_t i = 0; i < t->n_args; i++) {
      int rc = decode_value(t->args[i], "argument", i, &f->args[i]);
      if (rc != 0) return rc;
      f->nargs = i + 1;
    }
  }
  if (t->runtime != NULL && t->runtime->has_dispatch_timeout_ms) {
    f->has_timeout = 1;
    f->timeout_ms = t->runtime->dispatch_timeout_ms;
  }
  return 0;
}

/* The fields every Request and Response has past its payload. */
typedef struct {
  protobuf_c_boolean has_manifest, has_delta, has_delta_chains;
  const ProtobufCBinaryData *manifest, *delta;
  uint32_t delta_chains;
  size_t nresync;
  char **resync;
} tail_t;

static int take_resync(uvw_frame_t *f, const tail_t *t, const char *frame) {
  if (t->nresync == 0) return 0;
  if (t->nresync > UVW__FRAME_MAX_RESYNC) return frame_malformed(frame, "more resync chain ids than a frame carries");
  if ((f->resync = uvw__calloc(t->nresync, sizeof(*f->resync))) == NULL) return uvw__error_nomem("resync ids");
  for (size_t i = 0; i < t->nresync; i++, f->nresync++)
    if ((f->resync[i] = uvw__strndup(t->resync[i], strnlen(t->resync[i], 64))) == NULL)
      return uvw__error_nomem("resync ids");
  return 0;
}

static int finish(uvw_frame_t *f, int rc, const char *frame, const tail_t *t, int defer, uvw_frame_t **out) {
  if (rc == 0 && (t->has_manifest || t->has_delta)) {
    if (!carries_manifest(f->kind))
      rc = frame_malformed(frame, "this kind of frame never carries a manifest");
    else if (t->has_manifest && t->has_delta)
      rc = frame_malformed(frame, "both a manifest and a manifest delta");
    else if (t->has_delta)
      rc = keep_manifest(f, t->delta, 1);
    else
      rc = defer ? keep_manifest(f, t->manifest, 0) : decode_manifest(f, t->manifest, uvw_wire_stub_cap(), NULL, NULL);
    if (rc == 0 && t->has_delta && !defer) rc = delta_unresolvable(f);
  }
  if (rc == 0) rc = take_resync(f, t, frame);
  if (rc == 0 && t->has_delta_chains) f->delta_chains = t->delta_chains;
  if (rc != 0) {
    uvw_frame_free(f);
    return rc;
  }
  *out = f;
  return 0;
}

static int decode_request(const void *data, size_t len, int defer, uvw_frame_t **out) {
  if (out == NULL) return bad_use(NULL, "uvw_frame_decode_request: out is NULL");
  *out = NULL;
  ProtobufCMessage *msg;
  uvw__arena_t *arena;
  int rc = uvw__wire_unpack(&uvwool__request__descriptor, data, len, "request frame", &msg, &arena);
  if (rc != 0) return rc;
  const Uvwool__Request *r = (const Uvwool__Request *)msg;
  static const uvw_frame_kind_t kinds[] = {
      [UVWOOL__REQUEST__KIND_TASK] = UVW_FRAME_TASK, [UVWOOL__REQUEST__KIND_NEXT] = UVW_FRAME_NEXT,
      [UVWOOL__REQUEST__KIND_SEND] = UVW_FRAME_SEND, [UVWOOL__REQUEST__KIND_THROWN] = UVW_FRAME_THROW};
  uvw_frame_t *f = NULL;
  if (r->kind_case < UVWOOL__REQUEST__KIND_TASK || r->kind_case > UVWOOL__REQUEST__KIND_THROWN)
    rc = frame_malformed("request frame", "no Task, Next, Send or Throw member set");
  else if ((f = uvw_frame_new(kinds[r->kind_case], r->dispatch_id)) == NULL)
    rc = UVW_ENOMEM;
  if (rc == 0) {
    switch (f->kind) {
      case UVW_FRAME_TASK:
        rc = decode_task(r->task, f);
        break;
      case UVW_FRAME_SEND:
        rc = decode_value(r->send->value, "value", 0, &f->value);
        break;
      case UVW_FRAME_THROW:
        rc = decode_error(r->thrown->error, "request frame", f);
        break;
      default:
        break;
    }
    tail_t t = {r->has_manifest, r->has_manifest_delta, r->has_delta_chains, &r->manifest, &r->manifest_delta,
                r->delta_chains, r->n_resync, r->resync};
    rc = finish(f, rc, "request frame", &t, defer, out);
  }
  uvw__arena_free(arena);
  return rc;
}

int uvw_frame_decode_request(const void *data, size_t len, uvw_frame_t **out) {
  return decode_request(data, len, 0, out);
}

int uvw__frame_decode_request_deferred(const void *data, size_t len, uvw_frame_t **out) {
  return decode_request(data, len, 1, out);
}

static int decode_response(const void *data, size_t len, int defer, uvw_frame_t **out) {
  if (out == NULL) return bad_use(NULL, "uvw_frame_decode_response: out is NULL");
  *out = NULL;
  ProtobufCMessage *msg;
  uvw__arena_t *arena;
  int rc = uvw__wire_unpack(&uvwool__response__descriptor, data, len, "response frame", &msg, &arena);
  if (rc != 0) return rc;
  const Uvwool__Response *r = (const Uvwool__Response *)msg;
  static const uvw_frame_kind_t kinds[] = {
      [UVWOOL__RESPONSE__KIND_ACK] = UVW_FRAME_ACK, [UVWOOL__RESPONSE__KIND_NACK] = UVW_FRAME_NACK,
      [UVWOOL__RESPONSE__KIND_RESULT] = UVW_FRAME_RESULT, [UVWOOL__RESPONSE__KIND_EXCEPTION] = UVW_FRAME_EXCEPTION};
  uvw_frame_t *f = NULL;
  if (r->kind_case < UVWOOL__RESPONSE__KIND_ACK || r->kind_case > UVWOOL__RESPONSE__KIND_EXCEPTION)
    rc = frame_malformed("response frame", "no Ack, Nack, Result or Exception member set");
  else if ((f = uvw_frame_new(kinds[r->kind_case], r->dispatch_id)) == NULL)
    rc = UVW_ENOMEM;
  if (rc == 0) {
    switch (f->kind) {
      case UVW_FRAME_NACK:
        rc = decode_error(r->nack->error, "response frame", f);
        break;
      case UVW_FRAME_RESULT:
        rc = decode_value(r->result->value, "value", 0, &f->value);
        f->done = r->result->has_done && r->result->done;
        break;
      case UVW_FRAME_EXCEPTION:
        rc = decode_error(r->exception->error, "response frame", f);
        break;
      default:
        break;
    }
    tail_t t = {r->has_manifest, r->has_manifest_delta, r->has_delta_chains, &r->manifest, &r->manifest_delta,
                r->delta_chains, r->n_resync, r->resync};
    rc = finish(f, rc, "response frame", &t, defer, out);
  }
  uvw__arena_free(arena);
  return rc;
}

int uvw_frame_decode_response(const void *data, size_t len, uvw_frame_t **out) {
  return decode_response(data, len, 0, out);
}

int uvw__frame_decode_response_deferred(const void *data, size_t len, uvw_frame_t **out) {
  return decode_response(data, len, 1, out);
}

/* ---- accessors ------------------------------------------------------------------- */

uvw_frame_kind_t uvw_frame_kind(const uvw_frame_t *f) { return f ? f->kind : UVW_FRAME_NONE; }
uint64_t uvw_frame_dispatch_id(const uvw_frame_t *f) { return f ? f->dispatch_id : 0; }
const char *uvw_frame_routine(const uvw_frame_t *f) { return f ? f->routine : NULL; }
size_t uvw_frame_arg_count(const uvw_frame_t *f) { return f ? f->nargs : 0; }
uvw_value_t *uvw_frame_arg(const uvw_frame_t *f, size_t i) { return f && i < f->nargs ? f->args[i] : NULL; }
int uvw_frame_dispatch_timeout(const uvw_frame_t *f, uint64_t *ms) {
  if (f == NULL || !f->has_timeout) return 0;
  if (ms) *ms = f->timeout_ms;
  return 1;
}
uvw_value_t *uvw_frame_value(const uvw_frame_t *f) { return f ? f->value : NULL; }
int uvw_frame_done(const uvw_frame_t *f) { return f ? f->done : 0; }
const uvw_error_t *uvw_frame_error(const uvw_frame_t *f) { return f ? f->error : NULL; }
uvw_frame_manifest_state_t uvw_frame_manifest_state(const uvw_frame_t *f) {
  return f ? f->mstate : UVW_FRAME_MANIFEST_ABSENT;
}
const uvw_manifest_t *uvw_frame_manifest(const uvw_frame_t *f) { return f ? f->manifest : NULL; }
const uvw_error_t *uvw_frame_manifest_error(const uvw_frame_t *f) { return f ? f->merror : NULL; }

int uvw_frame_mount(const uvw_frame_t *f) {
  if (f == NULL) return bad_use(NULL, "uvw_frame_mount: frame is NULL");
  switch (f->mstate) {
    case UVW_FRAME_MANIFEST_DECODED:
      return uvw_manifest_mount(f->manifest);
    case UVW_FRAME_MANIFEST_ERROR:
      /* The error to raise: the payload (whose context tail holds the decode
       * error) when there is one, else the decode error itself. */
      uvw__error_publish(uvw_error_ref(f->error ? f->error : f->merror));
      return uvw_error_code(f->merror);
    default:
      return 0;
  }
}
