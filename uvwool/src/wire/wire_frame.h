/* The part of the wire layer's frame internals the dispatch layer uses
 * (no protobuf-c types: the dispatch layer never sees them). */
#ifndef UVW_WIRE_FRAME_H
#define UVW_WIRE_FRAME_H

#include <stddef.h>

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
/* Decode the kept manifest with at most `stub_budget` new stubs; *created
 * (may be NULL) gets how many it made. A decode error is kept in the frame
 * as usual (UVW_FRAME_MANIFEST_ERROR). Returns 0, or UVW_ENOMEM (the frame
 * then keeps the error state too). A frame with nothing kept: 0, no-op. */
int uvw__frame_decode_manifest(uvw_frame_t *f, size_t stub_budget, size_t *created);
/* Bytes the frame's kept manifest occupies (0 once decoded or if none). */
size_t uvw__frame_kept_bytes(const uvw_frame_t *f);

#endif
