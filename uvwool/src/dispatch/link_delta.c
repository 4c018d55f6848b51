/* Delta manifests on a link: the two books of a connection, the fields a
 * connection adds to each frame it writes, and what it does with those of
 * each frame it reads (dispatch_int.h; the books' rules: wire_delta.h). */
#include <string.h>

#include "alloc.h"
#include "dispatch_int.h"
#include "error.h"
#include "pbscan.h"
#include "wire_delta.h"
#include "wire_frame.h"

int uvw__link_delta_init(uvw__link_t *link, size_t chains) {
  uvw__link_delta_free(link);
  if (chains > UVW__DELTA_MAX_CHAINS) chains = UVW__DELTA_MAX_CHAINS;
  /* Until the peer says how many it keeps, the sent book keeps as many as
   * this side would: it shrinks to the peer's bound when heard (an LRU book
   * shrunk is the book of the smaller bound), and no delta goes out before. */
  link->sent = uvw__delta_book_new(chains);
  link->received = uvw__delta_book_new(chains);
  link->delta_own = (uint32_t)chains;
  if (link->sent == NULL || link->received == NULL) {
    uvw__link_delta_free(link);
    return uvw__error_nomem("delta manifest books");
  }
  return 0;
}

void uvw__link_delta_free(uvw__link_t *link) {
  uvw__delta_book_free(link->sent);
  uvw__delta_book_free(link->received);
  link->sent = link->received = NULL;
  for (size_t i = 0; i < link->nresync; i++) uvw__free(link->resync[i]);
  uvw__free(link->resync);
  link->resync = NULL;
  link->nresync = 0;
  link->delta_own = 0;
  link->delta_heard = link->delta_out = 0;
}

void uvw__link_delta_peer(uvw__link_t *link, uint32_t chains) {
  if (link->delta_heard) return;
  /* Out of memory: this connection takes full manifests only. */
  if (link->sent == NULL && link->delta_offer > 0 && chains > 0) uvw__link_delta_init(link, link->delta_offer);
  link->delta_heard = 1;
  uvw__delta_book_shrink(link->sent, chains);
  link->delta_out = link->sent != NULL && link->delta_own > 0 && chains > 0;
}

/* ---- writing --------------------------------------------------------------------- */

int uvw__link_encode(const uvw__link_t *link, const uvw_frame_t *f, void **buf, size_t *len, uint8_t **mbytes,
                     size_t *mlen) {
  if (link->sent != NULL) return uvw__frame_encode_bare(f, buf, len, mbytes, mlen);
  *mbytes = NULL;
  *mlen = 0;
  return uvw_frame_encode(f, buf, len);
}

/* The manifest part to append: a delta (new buffer in *delta) or the full
 * bytes, recorded in the sent book either way. */
static void manifest_part(uvw__link_t *link, const uint8_t *mbytes, size_t mlen, uint8_t **delta, size_t *dlen) {
  *delta = NULL;
  *dlen = 0;
  /* Out of memory there leaves the chain forgotten on this side only: the
   * full manifest goes out and the peer keeps it. The two books' orders
   * then differ by that one manifest, so a later delta may meet a chain the
   * peer evicted instead: it fails there and is resynchronised. */
  if (link->sent != NULL) uvw__delta_send(link->sent, mbytes, mlen, link->delta_out, delta, dlen);
}

int uvw__link_send_parts(uvw__link_t *link, void *frame, size_t len, uint8_t *mbytes, size_t mlen, int handshake) {
  uint8_t *delta = NULL;
  size_t dlen = 0;
  if (mbytes != NULL) manifest_part(link, mbytes, mlen, &delta, &dlen);
  if (mbytes != NULL && link->sent != NULL) ++*(delta ? &link->delta_counts.sent_delta : &link->delta_counts.sent_full);
  const uint8_t *part = delta ? delta : mbytes;
  size_t plen = delta ? dlen : mlen;
  uint32_t field = delta ? UVW__FRAME_FIELD_MANIFEST_DELTA : UVW__FRAME_FIELD_MANIFEST;
  size_t max = uvw_wire_max_size();
  size_t total = len + (part ? uvw__pb_bytes_size(field, plen) : 0);
  int advertise = handshake && link->delta_own > 0 && total + 2 * UVW__PB_VARINT_MAX <= max;
  if (advertise) total += 2 * UVW__PB_VARINT_MAX;
  /* Resync ids that fit (the frame stays within the limit; the rest wait). */
  size_t nresync = 0;
  while (nresync < link->nresync && nresync < UVW__FRAME_MAX_RESYNC) {
    size_t one = uvw__pb_bytes_size(UVW__FRAME_FIELD_RESYNC, strlen(link->resync[nresync]));
    if (total + one > max) break;
    total += one;
    nresync++;
  }
  if (part == NULL && !advertise && nresync == 0) return uvw__link_send(link, frame, len);
  uint8_t *out = uvw__malloc(total ? total : 1);
  if (out == NULL) {
    uvw_free(frame);
    uvw__free(mbytes);
    uvw__free(delta);
    return uvw__error_nomem("frame write");
  }
  if (len) memcpy(out, frame, len);
  size_t k = len;
  if (part) k += uvw__pb_put_bytes(out + k, field, part, plen);
  if (advertise) k += uvw__pb_put_uint(out + k, UVW__FRAME_FIELD_DELTA_CHAINS, link->delta_own);
  for (size_t i = 0; i < nresync; i++) {
    k += uvw__pb_put_bytes(out + k, UVW__FRAME_FIELD_RESYNC, link->resync[i], strlen(link->resync[i]));
    uvw__free(link->resync[i]);
  }
  if (nresync > 0) {
    memmove(link->resync, link->resync + nresync, (link->nresync - nresync) * sizeof(*link->resync));
    link->nresync -= nresync;
  }
  uvw_free(frame);
  uvw__free(mbytes);
  uvw__free(delta);
  return uvw__link_send(link, out, k);
}

/* ---- reading --------------------------------------------------------------------- */

/* Ask the peer for a full manifest of chain `id` with the next frame out.
 * A request that cannot be queued (out of memory, too many waiting) is
 * lost: the peer's next delta of that chain fails too and asks again. */
static void queue_resync(uvw__link_t *link, const char *id) {
  for (size_t i = 0; i < link->nresync; i++)
    if (strcmp(link->resync[i], id) == 0) return;
  if (link->nresync >= UVW__DELTA_MAX_CHAINS) return;
  char **grown = uvw__realloc(link->resync, (link->nresync + 1) * sizeof(*grown));
  if (grown == NULL) return;
  link->resync = grown;
  if ((link->resync[link->nresync] = uvw__strndup(id, strlen(id))) != NULL) link->nresync++;
}

static void no_books(void) {
  uvw_error_t *e = uvw__error_set(UVW_EMALFORMED, UVW_KIND_SERIALIZATION_ERROR,
                                  "malformed manifest delta: this side did not ask for delta manifests");
  uvw__error_field(e, "what", "manifest delta");
  uvw__error_field(e, "reason", "not negotiated");
}

/* A frame's manifest for the books: a full one is recorded; a delta is
 * rebuilt (0, *full a new buffer) or fails (-1, detail published, a resync
 * queued). */
static int take_manifest(uvw__link_t *link, const uint8_t *kept, size_t len, int is_delta, uint8_t **full,
                         size_t *flen) {
  *full = NULL;
  if (!is_delta) {
    if (link->received == NULL) return 0;
    link->delta_counts.received_full++;
    uvw__delta_recv_full(link->received, kept, len); /* out of memory: forgotten */
    return 0;
  }
  link->delta_counts.failed_delta++; /* until it applies */
  char id[UVW__DELTA_MAX_ID + 1] = "";
  if (link->received == NULL) {
    no_books();
    return -1;
  }
  if (uvw__delta_recv(link->received, kept, len, full, flen, id) == 0) {
    link->delta_counts.failed_delta--;
    link->delta_counts.received_delta++;
    return 0;
  }
  if (id[0] != '\0') queue_resync(link, id);
  return -1;
}

static void take_resync(uvw__link_t *link, const char *id, size_t len) {
  if (link->sent) uvw__delta_book_forget(link->sent, id, len);
}

void uvw__link_delta_receive(uvw__link_t *link, uvw_frame_t *f) {
  for (size_t i = 0, n = uvw__frame_resync_count(f); i < n; i++)
    take_resync(link, uvw__frame_resync(f, i), strlen(uvw__frame_resync(f, i)));
  size_t len, flen;
  int is_delta;
  uint8_t *full;
  const uint8_t *kept = uvw__frame_kept(f, &len, &is_delta);
  if (kept == NULL) return;
  if (take_manifest(link, kept, len, is_delta, &full, &flen) != 0)
    uvw__frame_fail_manifest(f);
  else if (full != NULL)
    uvw__frame_replace_kept(f, full, flen);
}

void uvw__link_delta_receive_raw(uvw__link_t *link, const uint8_t *data, size_t len) {
  size_t i = 0;
  uvw__pb_field_t field;
  while (uvw__pb_next(data, len, &i, &field) == 1) {
    uint8_t *full = NULL;
    size_t flen;
    if (field.number == UVW__FRAME_FIELD_DELTA_CHAINS && field.type == UVW__PB_VARINT)
      uvw__link_delta_peer(link, field.v > UINT32_MAX ? UINT32_MAX : (uint32_t)field.v);
    else if (field.number == UVW__FRAME_FIELD_RESYNC && field.type == UVW__PB_BYTES)
      take_resync(link, (const char *)field.data, field.len);
    else if ((field.number == UVW__FRAME_FIELD_MANIFEST || field.number == UVW__FRAME_FIELD_MANIFEST_DELTA) &&
             field.type == UVW__PB_BYTES)
      take_manifest(link, field.data, field.len, field.number == UVW__FRAME_FIELD_MANIFEST_DELTA, &full, &flen);
    uvw__free(full);
  }
}
