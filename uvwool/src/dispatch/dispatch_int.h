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
/* Close the handle; on_closed(link) runs from the close callback. */
void uvw__link_close(uvw__link_t *link, uvw__link_closed_cb on_closed);

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

/* The handshake bound when neither the dispatch nor the Task says. */
#define UVW__DEFAULT_DISPATCH_TIMEOUT_MS 5000

/* The class name of the Throw a caller sends when it cancels a dispatch (or
 * closes a stream): the worker drops that dispatch's answers from then on. */
#define UVW__CANCELLED_TYPE "CancelledError"

/* The error a dispatch gets for a lost connection / a cancellation, with
 * the routine name as a field. New reference. */
uvw_error_t *uvw__dispatch_error(int code, const char *routine, const char *why);

#endif
