/* Internals shared by the wire layer's files. */
#ifndef UVW_WIRE_INT_H
#define UVW_WIRE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "uvwool.pb-c.h"
#include "uvwool/wire.h"

/* Nesting limit for messages on the wire. protobuf-c unpacks recursively
 * with no depth limit, so a hostile run of nested Error.cause fields would
 * overflow the stack: every input is scanned against this bound first. */
#define UVW__WIRE_MAX_DEPTH 80
/* Errors nest at most this deep on encode (cause/context/warnings), so what
 * we send we can always decode. Matches the text form's cap in core. */
#define UVW__WIRE_MAX_ERROR_DEPTH 64
/* Most messages one input may hold in all (arguments, entries, values,
 * error fields...), checked before unpacking: the unpack allocates per
 * message, so this bounds the time one frame can take. */
#define UVW__WIRE_MAX_MESSAGES 131072


/* Size check + depth scan + unpack into an arena. Returns 0, the message
 * and the arena holding it (drop both with uvw__arena_free), or publishes
 * UVW_ETOOBIG / UVW_EMALFORMED / UVW_ENOMEM naming `what`. */
typedef struct uvw__arena_s uvw__arena_t;
int uvw__wire_unpack(const ProtobufCMessageDescriptor *desc, const void *data, size_t len, const char *what,
                     ProtobufCMessage **out, uvw__arena_t **arena);
void uvw__arena_free(uvw__arena_t *arena);
/* UVW_ETOOBIG for `what` of len bytes, detail published. */
int uvw__wire_too_big(const char *what, size_t len);
/* Pack msg into a new buffer (NULL for an empty message), checking the size
 * limit. */
int uvw__wire_pack(const ProtobufCMessage *msg, const char *what, void **out, size_t *len);

/* Values: fill pb from v. Strings and bytes point into v (borrowed); an
 * opaque value's payload is a new value stored in *hold (caller unrefs after
 * packing). Returns 0, or -1 with a reason in why (nothing to free). */
int uvw__value_to_pb(const uvw_value_t *v, Uvwool__Value *pb, Uvwool__Opaque *opaque, uvw_value_t **hold,
                     char *why, size_t whylen);
/* New reference in *out, or -1 with a reason in why; UVW_ENOMEM on
 * allocation failure (detail published). */
int uvw__value_from_pb(const Uvwool__Value *pb, uvw_value_t **out, char *why, size_t whylen);

/* Errors: a pb tree pointing into e (borrowed strings), freed with
 * uvw__error_pb_free. Returns 0, UVW_ENOMEM or UVW_ESERIALIZE (too deep). */
int uvw__error_to_pb(const uvw_error_t *e, Uvwool__Error **out);
void uvw__error_pb_free(Uvwool__Error *pb);
/* A new error record from pb, or UVW_ENOMEM. */
int uvw__error_from_pb(const Uvwool__Error *pb, uvw_error_t **out);

/* Manifest encode flags (env carrier: a fork-like rendering). */
#define UVW__MANIFEST_NO_ID 0x1u
#define UVW__MANIFEST_NO_RESETS 0x2u
/* Resolve ctx (NULL: current + guard), then pack. */
int uvw__manifest_encode(uvw_context_t *ctx, unsigned flags, void **out, size_t *len);
/* Decode an unpacked ChainManifest (the baggage carrier builds one). */
int uvw__manifest_from_pb(const Uvwool__ChainManifest *pb, uvw_manifest_t **out);

typedef struct uvw__mentry_s {
  uvw_var_t *var;
  uvw_value_t *value; /* reference held; NULL: reset */
} uvw__mentry_t;

/* Limits on a decoded manifest's keys: each of namespace and name is at
 * most this many bytes (longer entries are skipped with a warning), and a
 * manifest holds at most UVW__WIRE_MAX_ENTRIES entries (more is
 * UVW_ETOOBIG before anything is unpacked). */
#define UVW__WIRE_MAX_KEY_BYTES 255
#define UVW__WIRE_MAX_ENTRIES 4096

/* Decode with an explicit budget of new stubs (the dispatch layer passes
 * what is left of a connection's budget). *created (may be NULL) gets the
 * number of stubs this decode created. */
int uvw__manifest_decode_budget(const void *data, size_t len, size_t stub_budget, uvw_manifest_t **out,
                                size_t *created);
/* The number of top-level `entries` fields (number 2) of a ChainManifest,
 * counted before protobuf-c unpacks anything: 16 MiB of empty entries would
 * otherwise become eight million allocations. Stops past
 * UVW__WIRE_MAX_ENTRIES; a malformed input is left for the unpacker. */
size_t uvw__manifest_entry_fields(const uint8_t *p, size_t n);
/* The ChainManifest in p[0..n) as protobuf-c would unpack it, read by hand
 * when it has the shape uvwool's encoders write (manifest_scan.c);
 * `nentries` is uvw__manifest_entry_fields(p, n). 1: *pb points into *out
 * (free it with uvw__mscan_free) and into p; 0: not that shape, unpack it
 * with protobuf-c; UVW_ENOMEM. */
typedef struct uvw__mscan_s uvw__mscan_t;
int uvw__manifest_scan(const uint8_t *p, size_t n, size_t nentries, uvw__mscan_t **out,
                       const Uvwool__ChainManifest **pb);
void uvw__mscan_free(uvw__mscan_t *s);
/* uvw__manifest_from_pb with a budget. */
int uvw__manifest_from_pb_budget(const Uvwool__ChainManifest *pb, size_t stub_budget, uvw_manifest_t **out,
                                 size_t *created);

struct uvw_manifest_s {
  int has_id;
  uint8_t id[16];
  size_t n;
  uvw__mentry_t *entries; /* sorted by (namespace, name), unique */
  /* NULL, or a map binding exactly the entries (every one has a value),
   * reference held: a connection's cache (manifest_cache.c) shares one map
   * among the copies of a manifest it keeps, so a mount into a fresh context
   * takes it whole, and the map's encoding (its memo) lives across
   * dispatches instead of being made again for each. */
  struct uvw__map_s *map;
};

/* Base64url without padding. */
char *uvw__b64url_encode(const void *data, size_t len);
int uvw__b64url_decode(const char *text, size_t len, uint8_t **out, size_t *outlen);

/* A SerializationWarning about (ns, name) (either may be NULL), not yet
 * emitted: lenient callers emit it, strict ones aggregate it. */
uvw_error_t *uvw__wire_warning(const char *ns, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Lenient: emit every warning. Strict: fail with one ChainSerializationError
 * aggregating them (`what` names the operation). Consumes the warnings.
 * Returns 0 or UVW_ECHAINSERIALIZE. */
int uvw__wire_settle(uvw_error_t **warnings, size_t n, const char *what);

/* The warnings of one operation, bounded: the first UVW__WIRE_KEPT_WARNINGS
 * are kept, the rest only counted (`dropped`), so one hostile manifest of
 * millions of bad entries costs a counter, not millions of records or log
 * lines, and a strict-mode error stays small. */
#define UVW__WIRE_KEPT_WARNINGS 8
typedef struct {
  uvw_error_t **v;
  size_t n, cap;
  size_t dropped;
} uvw__warnlist_t;
int uvw__warnlist_add(uvw__warnlist_t *l, uvw_error_t *w); /* consumes w; UVW_ENOMEM */
/* uvw__wire_settle for a list, adding one summary warning ("N more") when
 * some were dropped; strict mode counts them in `failures`. Consumes the
 * list's warnings (drop the list afterwards). */
int uvw__wire_settle_list(uvw__warnlist_t *l, const char *what);
void uvw__warnlist_drop(uvw__warnlist_t *l);

#endif
