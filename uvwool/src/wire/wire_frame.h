/* The part of the wire layer's frame internals the dispatch layer uses
 * (no protobuf-c types: the dispatch layer never sees them). */
#ifndef UVW_WIRE_FRAME_H
#define UVW_WIRE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "uvwool/wire.h"

/* Longest routine name a decoded Task may carry, in bytes (longer is
 * UVW_EMALFORMED): a name is echoed in Nacks and logs. */
#define UVW__WIRE_MAX_ROUTINE_BYTES 255

/* uvw_frame_decode_request, except that the manifest is kept as bytes and
 * not decoded (state UVW_FRAME_MANIFEST_ABSENT until
 * uvw__frame_decode_manifest), so a frame for a dispatch that does not
 * exist costs no stubs. */
int uvw__frame_decode_request_deferred(const void *data, size_t len, uvw_frame_t **out);
/* The same for a Response: the caller decodes an answer's manifest once it
 * knows the dispatch, within its connection's stub budget. */
int uvw__frame_decode_response_deferred(const void *data, size_t len, uvw_frame_t **out);
/* A connection's cache of decoded manifests (manifest_cache.c): a chain's
 * unchanged manifest is copied, not decoded again. Bounded: a few slots of
 * manifests up to 2 KiB. NULL on allocation failure (decode without). */
typedef struct uvw__mcache_s uvw__mcache_t;
uvw__mcache_t *uvw__mcache_new(void);
void uvw__mcache_free(uvw__mcache_t *c);
/* uvw__manifest_decode_budget through the cache (c may be NULL). */
int uvw__mcache_decode(uvw__mcache_t *c, const uint8_t *data, size_t len, size_t stub_budget,
                       uvw_manifest_t **out, size_t *created);
/* How many decodes the cache answered (tests). */
size_t uvw__mcache_hits(const uvw__mcache_t *c);

/* Decode the kept manifest with at most `stub_budget` new stubs, through
 * the connection's cache (may be NULL); *created (may be NULL) gets how
 * many it made. A decode error is kept in the frame as usual
 * (UVW_FRAME_MANIFEST_ERROR). Returns 0, or UVW_ENOMEM (the frame then
 * keeps the error state too). A frame with nothing kept: 0, no-op. */
int uvw__frame_decode_manifest(uvw_frame_t *f, size_t stub_budget, size_t *created, uvw__mcache_t *cache);
/* Bytes the frame's kept manifest occupies (0 once decoded or if none). */
size_t uvw__frame_kept_bytes(const uvw_frame_t *f);

/* ---- delta manifests (the connection's side: dispatch/link.c) ----
 *
 * The fields of Request and Response a connection writes itself, past the
 * frame's own encoding (protobuf reads fields in any order), so that what
 * goes out in place of the manifest is decided at write time, in write
 * order, against the connection's book (wire_delta.h). */
#define UVW__FRAME_FIELD_DELTA_CHAINS 14
#define UVW__FRAME_FIELD_MANIFEST 15
#define UVW__FRAME_FIELD_MANIFEST_DELTA 16
#define UVW__FRAME_FIELD_RESYNC 17
/* Most resync ids one frame carries (more is UVW_EMALFORMED). */
#define UVW__FRAME_MAX_RESYNC 16

/* uvw_frame_encode without the manifest, whose bytes (a ChainManifest)
 * come in *mbytes (new buffer, uvw__free; NULL when absent). The whole
 * frame with them must fit the wire's size limit: UVW_ETOOBIG otherwise. */
int uvw__frame_encode_bare(const uvw_frame_t *f, void **out, size_t *len, uint8_t **mbytes, size_t *mlen);
/* A deferred frame's kept manifest bytes (NULL when none), and whether they
 * are a ManifestDelta rather than a ChainManifest. */
const uint8_t *uvw__frame_kept(const uvw_frame_t *f, size_t *len, int *is_delta);
/* The kept delta resolved: keep `full` (taken) as the ChainManifest. */
void uvw__frame_replace_kept(uvw_frame_t *f, uint8_t *full, size_t len);
/* The manifest failed with the last error: nothing kept, state ERROR (and
 * the error appended to the payload error's context chain, as a bad
 * manifest's). */
void uvw__frame_fail_manifest(uvw_frame_t *f);
/* A Task's or Ack's delta_chains (0: absent), and a frame's resync ids. */
uint32_t uvw__frame_delta_chains(const uvw_frame_t *f);
size_t uvw__frame_resync_count(const uvw_frame_t *f);
const char *uvw__frame_resync(const uvw_frame_t *f, size_t i);

#endif
