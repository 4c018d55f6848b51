/* Delta manifests (proto/uvwool.proto, ManifestDelta; docs/wire.md): what
 * one side of a connection keeps of the chains' manifests that crossed it
 * in one direction, and the two operations on it.
 *
 * A book is kept by the sender (what the receiver has) and by the receiver
 * (what it was sent). Both apply the same rules to the same manifests in the
 * same order (a connection delivers in order), so the receiver rebuilds
 * exactly the bytes the sender diffed against:
 *   - a manifest is kept only when it is "keepable": at most
 *     UVW__DELTA_MAX_BASE_BYTES, fields 1 (the id, once and first, 1 to
 *     UVW__DELTA_MAX_ID printable ASCII bytes) and 2 (entries) only, with
 *     minimal length prefixes, every entry with one namespace and one
 *     name, the entries strictly ascending by (namespace, name) compared as
 *     bytes (what uvwool's encoder writes, up to the size). A manifest that
 *     is not keepable makes the book forget its chain;
 *   - a full manifest is kept as version 1 and a delta's result as its
 *     base + 1;
 *   - every manifest kept makes its chain the most recently used; past
 *     max_chains the least recently used chain is forgotten.
 * The bound is the only thing the two sides may differ in: the sender's
 * must be at most the receiver's (it keeps the smaller of the two), and an
 * LRU book of k chains is the k most recently used chains, so then the
 * sender only ever diffs against a base the receiver still has.
 *
 * No protobuf-c types: the dispatch layer uses this header. */
#ifndef UVW_WIRE_DELTA_H
#define UVW_WIRE_DELTA_H

#include <stddef.h>
#include <stdint.h>

/* Protocol constants of delta manifests version 1 (both sides must agree). */
#define UVW__DELTA_MAX_BASE_BYTES 16384
#define UVW__DELTA_MAX_ID 64
/* The most chains one book keeps, whatever a side advertises. */
#define UVW__DELTA_MAX_CHAINS 1024

typedef struct uvw__delta_book_s uvw__delta_book_t;

/* A book of at most max_chains chains (clamped to UVW__DELTA_MAX_CHAINS;
 * 0 keeps nothing). NULL on allocation failure. */
uvw__delta_book_t *uvw__delta_book_new(size_t max_chains);
void uvw__delta_book_free(uvw__delta_book_t *b);
/* Lower the bound (never raises it), forgetting the least recently used. */
void uvw__delta_book_shrink(uvw__delta_book_t *b, size_t max_chains);
size_t uvw__delta_book_count(const uvw__delta_book_t *b);
/* Forget the chain whose id is id[0..len) (the peer asked for a resync). */
void uvw__delta_book_forget(uvw__delta_book_t *b, const void *id, size_t len);

/* Sender: the ChainManifest `full` is about to go out; the book records
 * it. With `allow`, and the chain's previous manifest in the book, *delta
 * gets a new buffer (uvw__free) holding the ManifestDelta to send instead,
 * when it is smaller than full; otherwise NULL: send full. 0, or
 * UVW_ENOMEM (detail published; the book then forgot the chain, so the
 * full manifest may still go out). */
int uvw__delta_send(uvw__delta_book_t *b, const uint8_t *full, size_t len, int allow, uint8_t **delta,
                    size_t *dlen);

/* Receiver: a full ChainManifest arrived (whatever it holds). 0 or
 * UVW_ENOMEM (the chain is then forgotten). */
int uvw__delta_recv_full(uvw__delta_book_t *b, const uint8_t *full, size_t len);

/* Receiver: a ManifestDelta arrived. 0 and the rebuilt ChainManifest in a
 * new buffer *full (uvw__free), recorded; or UVW_EMALFORMED (a delta that
 * does not parse, names no chain this side keeps, or is against another
 * version than the one kept, or does not apply to it) / UVW_ENOMEM, with
 * the detail published, the chain forgotten, and its id in resync_id
 * (NUL-terminated; empty when the delta names none) for the peer. */
int uvw__delta_recv(uvw__delta_book_t *b, const uint8_t *delta, size_t dlen, uint8_t **full, size_t *flen,
                    char resync_id[UVW__DELTA_MAX_ID + 1]);

#endif
