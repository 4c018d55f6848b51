/* uvwool wire layer: value codecs, the ChainManifest, dispatch frames and
 * carriers (base64url text, W3C baggage, an environment variable).
 *
 * The format is proto/uvwool.proto (protobuf, proto2); docs/wire.md
 * describes it and every choice made. Rules (docs/semantics.md §7-8):
 *   - encoding is deterministic: entries sorted by (namespace, name)
 *     bytewise, so equal states give identical bytes;
 *   - decoding is pure: it never touches a live context (it may register
 *     stubs for undeclared keys, capped by uvw_wire_set_stub_cap);
 *   - mounting is the only place wire state enters a context.
 *
 * Errors follow the rest of uvwool: 0 or a negative UVW_E* code, details in
 * uvw_last_error(). Wire-specific codes: UVW_EMALFORMED, UVW_ETOOBIG,
 * UVW_ESTUBCAP (kind SerializationError), UVW_ECHAINSERIALIZE (strict mode,
 * kind ChainSerializationError, one aggregated warning per failure).
 * Buffers and strings returned to the caller are freed with uvw_free. */
#ifndef UVWOOL_WIRE_H
#define UVWOOL_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "uvwool/context.h"
#include "uvwool/errors.h"
#include "uvwool/value.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- limits ---------------------------------------------------------------- */

/* Largest encoded frame, manifest or carrier payload accepted or produced,
 * in bytes. Default 16 MiB. Larger input fails with UVW_ETOOBIG before any
 * parsing. 0 restores the default. Process-wide. */
void uvw_wire_set_max_size(size_t bytes);
size_t uvw_wire_max_size(void);
/* Most new stubs (placeholders for undeclared variables) ONE decode may
 * create: one manifest (uvw_manifest_decode, a frame's manifest, the text
 * and environment carriers) or one baggage header. Default 128. A decode
 * that would create one more fails with UVW_ESTUBCAP and leaves nothing
 * behind. Keys already known (declared, or a stub alive) never count.
 * A stub lives while a decoded manifest or a context holds it and is freed
 * with the last one, so no budget is shared between peers; a worker also
 * bounds the stubs of each connection (uvw_worker_limits_t.max_stubs).
 * 0 restores the default. The setting is process-wide, thread-safe. */
void uvw_wire_set_stub_cap(size_t stubs);
size_t uvw_wire_stub_cap(void);
/* Number of stubs alive in the process now. Thread-safe, never fails. For
 * monitoring and tests. */
size_t uvw_wire_stub_count(void);

/* ---- value codecs ------------------------------------------------------------ */

/* Encode the opaque value `value` (borrowed) for the wire: return 0 and a
 * new reference to a BYTES or STRING value holding its payload in *out, or
 * non-zero when it cannot be encoded (the caller reports it). */
typedef int (*uvw_codec_encode_cb)(const uvw_value_t *value, void *arg, uvw_value_t **out);
/* Decode a payload (borrowed, len bytes) into a new reference in *out (any
 * non-sentinel value, usually an opaque one), or return non-zero. */
typedef int (*uvw_codec_decode_cb)(const void *data, size_t len, void *arg, uvw_value_t **out);

/* Register (or replace) the codec for opaque values whose ops->type_name is
 * `type_name` (copied). `encode` and/or `decode` may be NULL for a one-way
 * codec. `arg` is passed through; it must outlive the registration.
 * Returns 0, UVW_EINVAL (empty name, both functions NULL) or UVW_ENOMEM. */
int uvw_codec_register(const char *type_name, uvw_codec_encode_cb encode, uvw_codec_decode_cb decode,
                       void *arg);
/* Remove a codec. Returns 0, or UVW_EINVAL when none is registered. */
int uvw_codec_unregister(const char *type_name);

/* ---- manifests ---------------------------------------------------------------- */

/* A decoded manifest: resolved variables and decoded values, immutable,
 * owned by whoever decoded it (free with uvw_manifest_free). */
typedef struct uvw_manifest_s uvw_manifest_t;

/* Encode the manifest of `ctx` (NULL: the current context, after running
 * the guard as get does). One entry per bound variable whose policy has
 * UVW_PROPAGATE_WIRE, one value-less entry per pending reset, sorted.
 * A value that cannot be encoded (an opaque value without a codec, a failing
 * codec) emits a SerializationWarning and its key is left out entirely; in
 * strict mode every such failure is collected and the call fails once with
 * UVW_ECHAINSERIALIZE. An unarmed context encodes to zero bytes (*out NULL,
 * *len 0), which decodes to an empty manifest that mounts as a no-op.
 * On success *out is a new buffer (uvw_free). */
int uvw_manifest_encode(uvw_context_t *ctx, void **out, size_t *len);

/* Decode a manifest without touching any live context: parse, resolve
 * identities (creating stubs for undeclared keys, within the stub cap),
 * decode values. A duplicate key warns and the first wins; a bad value
 * (unknown codec, failing codec, no kind) warns and its entry is skipped
 * (no reset recorded). In strict mode those failures aggregate into one
 * UVW_ECHAINSERIALIZE. Always errors: UVW_EMALFORMED (not a ChainManifest,
 * bad id), UVW_ETOOBIG, UVW_ESTUBCAP, UVW_ENOMEM. Entries of variables that
 * opt out of the wire here (policy without UVW_PROPAGATE_WIRE) are ignored.
 * New manifest in *out. */
int uvw_manifest_decode(const void *data, size_t len, uvw_manifest_t **out);
void uvw_manifest_free(uvw_manifest_t *m);

/* Introspection. The id as 32 lowercase hex digits + NUL: returns 0, or
 * UVW_EINVAL when the manifest has no id (the mount will mint one). */
int uvw_manifest_id(const uvw_manifest_t *m, char out[33]);
/* Entries in (namespace, name) order. var: borrowed, lives for the process.
 * value: borrowed, NULL for a reset entry. */
size_t uvw_manifest_entry_count(const uvw_manifest_t *m);
uvw_var_t *uvw_manifest_entry_var(const uvw_manifest_t *m, size_t i);
uvw_value_t *uvw_manifest_entry_value(const uvw_manifest_t *m, size_t i);

/* Mount m (borrowed) into the current context. Runs the guard first, as set
 * does. Unarmed receiver: a manifest with no entries changes nothing (an
 * id-only manifest does not arm); otherwise install a chain with the
 * manifest's id (a fresh one if it has none), owned by this thread and task.
 * Armed receiver (merge): keep the receiver's id, incoming values win,
 * incoming resets unbind and become pending resets, variables not mentioned
 * stay bound, the owner is re-stamped. Stubs the mount binds or resets are
 * pinned in the chain. On any error the context is untouched. */
int uvw_manifest_mount(const uvw_manifest_t *m);

/* ---- frames ---------------------------------------------------------------------- */

typedef enum uvw_frame_kind_e {
  UVW_FRAME_NONE = 0,
  /* requests: caller -> worker */
  UVW_FRAME_TASK,      /* routine + args + runtime context; never a manifest */
  UVW_FRAME_NEXT,      /* manifest */
  UVW_FRAME_SEND,      /* value + manifest */
  UVW_FRAME_THROW,     /* error + manifest */
  /* responses: worker -> caller */
  UVW_FRAME_ACK,       /* nothing */
  UVW_FRAME_NACK,      /* error; never a manifest */
  UVW_FRAME_RESULT,    /* value + done flag + manifest */
  UVW_FRAME_EXCEPTION  /* error + manifest */
} uvw_frame_kind_t;

typedef enum uvw_frame_manifest_state_e {
  UVW_FRAME_MANIFEST_ABSENT = 0, /* the sender was unarmed, or the kind carries none */
  UVW_FRAME_MANIFEST_DECODED,    /* uvw_frame_manifest() returns it */
  UVW_FRAME_MANIFEST_ERROR       /* decoding failed: deferred to uvw_frame_mount */
} uvw_frame_manifest_state_t;

typedef struct uvw_frame_s uvw_frame_t;

/* A new, empty frame of `kind` for dispatch `dispatch_id`. New frame (free
 * with uvw_frame_free), NULL on bad kind (UVW_EINVAL) or allocation failure. */
uvw_frame_t *uvw_frame_new(uvw_frame_kind_t kind, uint64_t dispatch_id);
void uvw_frame_free(uvw_frame_t *f);

/* Builders. Each returns 0, UVW_EINVAL when the frame's kind has no such
 * part, or UVW_ENOMEM. Arguments are borrowed (the frame takes its own
 * references/copies). */
int uvw_frame_set_routine(uvw_frame_t *f, const char *routine);       /* TASK */
int uvw_frame_add_arg(uvw_frame_t *f, uvw_value_t *arg);               /* TASK */
int uvw_frame_set_dispatch_timeout(uvw_frame_t *f, uint64_t ms);       /* TASK */
int uvw_frame_set_value(uvw_frame_t *f, uvw_value_t *value);           /* SEND, RESULT */
int uvw_frame_set_done(uvw_frame_t *f, int done);                      /* RESULT */
int uvw_frame_set_error(uvw_frame_t *f, const uvw_error_t *error);     /* THROW, NACK, EXCEPTION */
/* Attach the manifest of ctx (NULL: current context, guard run), encoded
 * as uvw_manifest_encode does (warnings / strict mode included). An unarmed
 * context attaches nothing (absent). NEXT, SEND, THROW, RESULT, EXCEPTION. */
int uvw_frame_set_manifest(uvw_frame_t *f, uvw_context_t *ctx);
/* Attach already-encoded manifest bytes (copied), e.g. to relay them. */
int uvw_frame_set_manifest_bytes(uvw_frame_t *f, const void *data, size_t len);

/* Encode to protobuf (a Request for request kinds, a Response otherwise).
 * New buffer in *out (uvw_free). UVW_ETOOBIG past the size limit,
 * UVW_ESERIALIZE when a value cannot be encoded (field "part"). Frames
 * without a required part (TASK routine, THROW/NACK/EXCEPTION error) are
 * UVW_EINVAL. */
int uvw_frame_encode(const uvw_frame_t *f, void **out, size_t *len);
/* Decode a Request / a Response. New frame in *out. Errors: UVW_ETOOBIG,
 * UVW_EMALFORMED (bad protobuf, no kind, missing required part, a manifest on
 * a kind that carries none), UVW_ESERIALIZE (an undecodable argument, value
 * or error payload), UVW_ENOMEM. A manifest that fails to decode does NOT
 * fail the frame: the state becomes UVW_FRAME_MANIFEST_ERROR and the error
 * is deferred to uvw_frame_mount; for error payloads (THROW, NACK,
 * EXCEPTION) the decode error is also attached at the tail of the payload's
 * context chain (uvw_error_context), so the sender's error is never hidden. */
int uvw_frame_decode_request(const void *data, size_t len, uvw_frame_t **out);
int uvw_frame_decode_response(const void *data, size_t len, uvw_frame_t **out);

/* Accessors (all borrowed, valid while the frame lives). */
uvw_frame_kind_t uvw_frame_kind(const uvw_frame_t *f);
uint64_t uvw_frame_dispatch_id(const uvw_frame_t *f);
const char *uvw_frame_routine(const uvw_frame_t *f);                   /* NULL if none */
size_t uvw_frame_arg_count(const uvw_frame_t *f);
uvw_value_t *uvw_frame_arg(const uvw_frame_t *f, size_t i);
/* Non-zero and *ms set when the Task carries a dispatch timeout. */
int uvw_frame_dispatch_timeout(const uvw_frame_t *f, uint64_t *ms);
/* SEND/RESULT value; an absent one decodes as nil. NULL for other kinds. */
uvw_value_t *uvw_frame_value(const uvw_frame_t *f);
int uvw_frame_done(const uvw_frame_t *f);
const uvw_error_t *uvw_frame_error(const uvw_frame_t *f);
uvw_frame_manifest_state_t uvw_frame_manifest_state(const uvw_frame_t *f);
const uvw_manifest_t *uvw_frame_manifest(const uvw_frame_t *f);       /* DECODED only */
const uvw_error_t *uvw_frame_manifest_error(const uvw_frame_t *f);    /* ERROR only */

/* Mount the frame's manifest into the current context: ABSENT -> 0, nothing
 * changes; DECODED -> uvw_manifest_mount; ERROR -> returns the deferred
 * decode error's code, nothing changes, and uvw_last_error() is the error to
 * raise: the decode error itself, or for an error payload the payload error
 * with the decode error at the tail of its context chain. */
int uvw_frame_mount(const uvw_frame_t *f);

/* ---- carriers ---------------------------------------------------------------------- */

/* Text: the manifest of ctx (NULL: current) as base64url without padding,
 * for an HTTP header or gRPC metadata value. New NUL-terminated string in
 * *out (uvw_free); an unarmed context gives "". */
int uvw_text_encode(uvw_context_t *ctx, char **out);
/* Parse such text (padding tolerated, nothing else) and decode the manifest
 * (as uvw_manifest_decode). UVW_EMALFORMED on bad base64url. */
int uvw_text_decode(const char *text, size_t len, uvw_manifest_t **out);

/* W3C baggage, read and written the way OpenTelemetry's W3CBaggagePropagator
 * does (docs/wire.md, "W3C baggage"). Encode: string-valued bound variables
 * of ctx (NULL: current, guard run) whose policy has UVW_PROPAGATE_WIRE and
 * UVW_PROPAGATE_BAGGAGE, as members `key=value`, key = percent-encoded
 * namespace (with '.' encoded), '.', percent-encoded name; value
 * percent-encoded; sorted like manifests; then the other systems' members
 * ctx received (its ("uvwool", "baggage") binding), as received. Other
 * kinds, resets and the chain id are not rendered. Members past
 * OpenTelemetry's limits (4096 bytes per member, 8192 in all, 180 members)
 * are left out with a SerializationWarning (strict mode: one
 * ChainSerializationError). Returns 0 and a new string in *out (uvw_free),
 * or UVW_EINVAL (out NULL), UVW_ECONTENTION, UVW_ECHAINSERIALIZE,
 * UVW_ENOMEM. Thread-safe for an explicit ctx. */
int uvw_baggage_encode(uvw_context_t *ctx, char **out);
/* Decode a baggage header into a new manifest without id (*out, free with
 * uvw_manifest_free). A member whose decoded key, split at one of its dots,
 * names a declared variable with UVW_PROPAGATE_BAGGAGE is a string entry;
 * every other accepted member belongs to another system and is kept, as
 * received, in one string entry of ("uvwool", "baggage"), so mounting the
 * manifest and re-encoding re-emits it. Never creates a stub. Limits
 * truncate (one SerializationWarning with field "dropped"; strict: the
 * decode fails with UVW_ECHAINSERIALIZE); a key seen twice: the last wins.
 * A bad escape or invalid UTF-8 in a value of ours warns and skips it.
 * Errors: UVW_EINVAL (out NULL, text NULL with len > 0), UVW_ETOOBIG (over
 * the wire size limit), UVW_ECHAINSERIALIZE, UVW_ENOMEM. Any thread. */
int uvw_baggage_decode(const char *text, size_t len, uvw_manifest_t **out);

/* Environment: the variable a parent sets for a child process. */
#define UVW_ENV_CHAIN "UVWOOL_CHAIN"
/* "UVWOOL_CHAIN=<base64url>" for a child's environment (uv_spawn's env),
 * rendering ctx (NULL: current) like a fork: the values only, no pending
 * resets and no id (the child mints its own, as a spawned task does). New
 * string in *out (uvw_free), or *out = NULL when ctx is unarmed. */
int uvw_env_encode(uvw_context_t *ctx, char **out);
/* In the child, at start: mount $UVWOOL_CHAIN into the current context.
 * Returns 0 when the variable is absent or empty (nothing to do), else
 * uvw_text_decode's / uvw_manifest_mount's result. */
int uvw_env_mount(void);

#ifdef __cplusplus
}
#endif
#endif
