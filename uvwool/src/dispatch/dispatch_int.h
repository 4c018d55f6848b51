/* Internals shared by the worker and the caller side of dispatch: the framed
 * link over a libuv stream, the dispatch-id table and address parsing. */
#ifndef UVW_DISPATCH_INT_H
#define UVW_DISPATCH_INT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "uvwool/common.h"
#include "uvwool/dispatch.h"
#include "uvwool/wire.h"

/* ---- addresses ---------------------------------------------------------------- */

typedef struct uvw__addr_s {
  int is_pipe;
  char path[108]; /* sun_path's size */
  struct sockaddr_storage sa;
} uvw__addr_t;

/* Parse "pipe:PATH" / "tcp:HOST:PORT". 0 or UVW_EINVAL (detail published). */
int uvw__addr_parse(const char *address, uvw__addr_t *out);

/* ---- the framed link ------------------------------------------------------------
 * One frame on the stream = a 4-byte big-endian length + that many bytes of
 * protobuf (a Request or a Response). The length is checked against the
 * wire size limit before anything is buffered, so a hostile peer cannot make
 * us allocate more than the limit. */

typedef struct uvw__link_s uvw__link_t;
/* What delta manifests did on one link (tests, benchmarks); all zero on a
 * link without books. */
typedef struct {
  size_t sent_full, sent_delta;         /* manifests written whole / as a delta */
  size_t received_full, received_delta; /* read whole / rebuilt from a delta */
  size_t failed_delta;                  /* deltas that did not apply here (a resync was asked) */
} uvw__delta_counts_t;
/* A complete frame (borrowed bytes, valid during the call). The callback may
 * close the link. */
typedef void (*uvw__link_frame_cb)(uvw__link_t *link, const uint8_t *data, size_t len);
/* The link failed (EOF, read error, oversized frame): code and a published
 * detail. The owner closes it. */
typedef void (*uvw__link_fail_cb)(uvw__link_t *link, int code);
typedef void (*uvw__link_closed_cb)(uvw__link_t *link);

struct uvw__link_s {
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;
  uint8_t *buf; /* bytes read, not yet consumed */
  size_t len, cap;
  uvw__link_frame_cb on_frame;
  uvw__link_fail_cb on_fail;
  uvw__link_closed_cb on_closed;
  void *owner;
  int reading, closing, failed;
  /* Worker side (0 on the caller's links): when the partial frame in buf
   * began arriving and when the peer last sent anything (uv_now, ms), and
   * the write-queue size past which reading pauses until it drains to half. */
  uint64_t partial_since, last_read, paused_since;
  size_t high_water;
  int paused;
  /* Delta manifests (link_delta.c). `sent`: what the peer keeps of the
   * manifests this side sends; `received`: what this side keeps of the
   * peer's. NULL until uvw__link_delta_init. */
  struct uvw__delta_book_s *sent, *received;
  uint32_t delta_own;  /* chains this side keeps of the peer's manifests, as advertised */
  uint32_t delta_offer; /* worker: the bound it takes deltas with, once a Task asks (0: never) */
  int delta_heard;     /* the peer's bound is known (its first Task / Ack) */
  int delta_out;       /* deltas may go out: both sides keep chains */
  char **resync;       /* chain ids whose delta failed here, for the next frame out */
  size_t nresync;
  uvw__delta_counts_t delta_counts;
  /* The peer's manifests decoded lately (wire_frame.h), made at the first
   * decode, freed with the handle. */
  struct uvw__mcache_s *decoded;
};

/* Initialise the handle for an address (tcp or pipe) on loop. */
int uvw__link_init(uvw__link_t *link, uv_loop_t *loop, int is_pipe, void *owner);
/* Start reading frames. */
int uvw__link_start(uvw__link_t *link, uvw__link_frame_cb on_frame, uvw__link_fail_cb on_fail);
/* Queue one frame: takes ownership of `frame` (a uvw_free-able buffer from
 * uvw_frame_encode) whatever the result. 0 or libuv's error. */
int uvw__link_send(uvw__link_t *link, void *frame, size_t len);
/* Encode f and send it. 0 or the encode / write error. */
int uvw__link_send_frame(uvw__link_t *link, const uvw_frame_t *f);
/* Decode f's kept manifest within `stub_budget` (what is left of the
 * connection's) and the wire's own cap, through the link's cache; returns
 * the number of stubs it made (uvw__frame_decode_manifest). */
size_t uvw__link_decode_manifest(uvw__link_t *link, uvw_frame_t *f, size_t stub_budget);
/* Close the handle; on_closed(link) runs from the close callback. */
void uvw__link_close(uvw__link_t *link, uvw__link_closed_cb on_closed);

/* ---- delta manifests on a link (link_delta.c; docs/wire.md) ----------------------
 * Each link keeps two books (wire_delta.h): one per direction. Whether a
 * manifest goes out whole or as a delta is decided when its frame is
 * written, in write order, so the books of both ends see the same
 * manifests in the same order. */

/* Caller: keep up to `chains` chains of the worker's manifests and
 * advertise that on Tasks; 0 (or never called): full manifests only, both
 * ways. Before any frame. 0 or UVW_ENOMEM. A worker does not call this: it
 * sets delta_offer and gets its books when the first Task asks. */
int uvw__link_delta_init(uvw__link_t *link, size_t chains);
void uvw__link_delta_free(uvw__link_t *link);
/* The peer's bound, from the first Task (worker) or Ack (caller) it sent;
 * later calls change nothing. A worker whose delta_offer is not 0 makes its
 * books then (a caller that never asks costs it nothing), and advertises
 * on its Acks. Deltas go out from then on if both sides keep chains. */
void uvw__link_delta_peer(uvw__link_t *link, uint32_t chains);
/* f encoded for uvw__link_send_parts: the frame without its manifest and
 * the manifest apart while this link has books, else the whole frame at
 * once (*mbytes NULL). 0 or the encode error. */
int uvw__link_encode(const uvw__link_t *link, const uvw_frame_t *f, void **buf, size_t *len, uint8_t **mbytes,
                     size_t *mlen);
/* Write a frame from uvw__frame_encode_bare's parts: the manifest bytes
 * (taken; NULL for none) go out whole or as a delta; pending resync ids and,
 * when `handshake` (a Task or an Ack), this side's bound ride along. Takes
 * `frame` whatever the result. 0 or an error as uvw__link_send. */
int uvw__link_send_parts(uvw__link_t *link, void *frame, size_t len, uint8_t *mbytes, size_t mlen, int handshake);
/* A frame just decoded (deferred): its resync ids make the sent book forget
 * those chains; its delta is rebuilt into the full manifest (or fails the
 * frame's manifest, detail kept, a resync queued for the peer); its full
 * manifest is recorded. Runs before anything looks at the frame's
 * dispatch, so every frame's manifest reaches the book in order. */
void uvw__link_delta_receive(uvw__link_t *link, uvw_frame_t *f);
/* The same for a frame that did not decode but failed only its own
 * dispatch (a value this side cannot decode): read from its top level. */
void uvw__link_delta_receive_raw(uvw__link_t *link, const uint8_t *data, size_t len);

/* ---- the dispatch-id table (intrusive, per connection) ------------------------- */

typedef struct uvw__idnode_s {
  uint64_t id;
  struct uvw__idnode_s *next;
} uvw__idnode_t;

typedef struct uvw__idmap_s {
  uvw__idnode_t **buckets;
  size_t nbuckets, count;
  size_t scan; /* buckets below this are empty: popping everything is linear */
} uvw__idmap_t;

void uvw__idmap_init(uvw__idmap_t *m);
void uvw__idmap_free(uvw__idmap_t *m);
/* 0 or UVW_ENOMEM (growing). The id must not be present. */
int uvw__idmap_put(uvw__idmap_t *m, uvw__idnode_t *n);
uvw__idnode_t *uvw__idmap_get(const uvw__idmap_t *m, uint64_t id);
void uvw__idmap_del(uvw__idmap_t *m, uvw__idnode_t *n);
/* Remove and return any one node, or NULL when empty (for teardown). */
uvw__idnode_t *uvw__idmap_pop(uvw__idmap_t *m);

/* The dispatch id (field 1) and the kind (the oneof member's field number:
 * 2 Task/Ack, 3 Next/Nack, 4 Send/Result, 5 Throw/Exception) of a Request
 * or Response, read from its top level without decoding anything else.
 * 0, or -1 when the top level does not parse or names no kind. */
int uvw__frame_peek(const uint8_t *p, size_t n, uint64_t *id, unsigned *kind);

/* The delta counters of a caller's connection (zeros for NULL). */
uvw__delta_counts_t uvw__conn_delta_counts(const uvw_conn_t *c);

/* Non-zero once the connection is established and while it lives (the
 * pool prefers such members to ones still connecting). */
int uvw__conn_is_up(const uvw_conn_t *c);

/* A pool's members share one dispatch-id counter (a dispatch keeps its id
 * when it moves between them) and the pool hears of every dispatch still
 * going on a member whose connection fails before it was ever up, so
 * nothing of it was written: fn may move it with uvw__conn_adopt, else it
 * fails there as usual. counter NULL: the connection's own again. */
typedef void (*uvw__conn_reroute_cb)(void *arg, uvw_conn_t *from, uvw_dispatch_t *d);
void uvw__conn_share_ids(uvw_conn_t *c, uint64_t *counter, uvw__conn_reroute_cb fn, void *arg);
/* Move d, none of whose frames left, to `to` (another live connection on
 * the same counter) with its deadline, capture and callback. 0, or
 * UVW_EINVAL / UVW_ENOMEM with d left where it was. Runs no user code. */
int uvw__conn_adopt(uvw_conn_t *to, uvw_dispatch_t *d);
/* Two words the pool keeps in each dispatch for its re-routing. */
size_t *uvw__dispatch_route(uvw_dispatch_t *d);

/* The caller's default budget of stubs per connection (uvw_conn_set_max_stubs). */
#define UVW__DEFAULT_CONN_MAX_STUBS 1024

/* Chains whose last manifest each side of a connection keeps, per
 * direction, for delta manifests (uvw_worker_limits_t.delta_chains). */
#define UVW__DEFAULT_DELTA_CHAINS 64

/* The handshake bound when neither the dispatch nor the Task says. */
#define UVW__DEFAULT_DISPATCH_TIMEOUT_MS 5000

/* The class name of the Throw a caller sends when it cancels a dispatch (or
 * closes a stream): the worker drops that dispatch's answers from then on. */
#define UVW__CANCELLED_TYPE "CancelledError"

/* The error a dispatch gets for a lost connection / a cancellation, with
 * the routine name as a field. New reference. */
uvw_error_t *uvw__dispatch_error(int code, const char *routine, const char *why);

#endif
