/* The framed link: length-prefixed protobuf frames over a libuv stream. */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "dispatch_int.h"
#include "error.h"
#include "wire_frame.h"

#define HEADER 4
#define MIN_READ 65536

int uvw__link_init(uvw__link_t *link, uv_loop_t *loop, int is_pipe, void *owner) {
  memset(link, 0, sizeof(*link));
  link->owner = owner;
  int rc = is_pipe ? uv_pipe_init(loop, &link->h.pipe, 0) : uv_tcp_init(loop, &link->h.tcp);
  if (rc == 0) {
    link->h.handle.data = link;
    return 0;
  }
  uvw_error_t *e = uvw__error_set(rc, UVW_KIND_RUNTIME_ERROR, "cannot create the %s handle: %s",
                                  is_pipe ? "pipe" : "tcp", uv_strerror(rc));
  uvw__error_field(e, "libuv_error", "%s", uv_err_name(rc));
  return rc;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out) {
  uvw__link_t *link = h->data;
  (void)suggested;
  if (link->cap - link->len < MIN_READ) {
    /* Doubling: a 16 MiB frame costs a few reallocations, not 256 copies
     * of a growing buffer. At most twice what the peer has sent. */
    size_t cap = link->cap * 2, most = uvw_wire_max_size() + HEADER + MIN_READ;
    if (cap > most) cap = most;
    if (cap < link->len + MIN_READ) cap = link->len + MIN_READ;
    uint8_t *b = uvw__realloc(link->buf, cap);
    if (b == NULL) {
      *out = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS to on_read */
      return;
    }
    link->buf = b;
    link->cap = cap;
  }
  *out = uv_buf_init((char *)link->buf + link->len, (unsigned)(link->cap - link->len));
}

static void fail(uvw__link_t *link, int code) {
  if (link->failed || link->closing) return;
  link->failed = 1;
  uv_read_stop(&link->h.stream);
  link->on_fail(link, code);
}

/* Deliver every complete frame in the buffer; keep a partial one. */
static void drain(uvw__link_t *link) {
  size_t off = 0, max = uvw_wire_max_size();
  /* A paused link delivers nothing more: its answers would pile up. */
  while (!link->closing && !link->failed && !link->paused && link->len - off >= HEADER) {
    const uint8_t *p = link->buf + off;
    size_t n = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
    if (n > max) {
      uvw_error_t *e = uvw__error_set(UVW_ETOOBIG, UVW_KIND_SERIALIZATION_ERROR,
                                      "peer announced a %zu-byte frame; the limit is %zu", n, max);
      uvw__error_field(e, "size", "%zu", n);
      uvw__error_field(e, "limit", "%zu", max);
      fail(link, UVW_ETOOBIG);
      return;
    }
    if (link->len - off - HEADER < n) break;
    off += HEADER + n;
    link->on_frame(link, p + HEADER, n);
  }
  if (link->closing || link->failed) return;
  memmove(link->buf, link->buf + off, link->len - off);
  link->len -= off;
  /* Don't keep a large buffer around after a large frame passed. */
  if (link->cap > 4 * MIN_READ && link->len < MIN_READ) {
    uint8_t *b = uvw__realloc(link->buf, MIN_READ);
    if (b) {
      link->buf = b;
      link->cap = MIN_READ;
    }
  }
}

/* The clocks the worker's sweep reads: a partial frame's age restarts
 * whenever a frame completes. */
static void stamp(uvw__link_t *link, size_t before_drain, size_t consumed) {
  uint64_t now = uv_now(link->h.handle.loop);
  link->last_read = now;
  if (link->len == 0)
    link->partial_since = 0;
  else if (consumed > 0 || before_drain == 0 || link->partial_since == 0)
    link->partial_since = now;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  uvw__link_t *link = s->data;
  (void)buf;
  if (nread > 0) {
    size_t before = link->len;
    link->len += (size_t)nread;
    size_t total = link->len;
    drain(link);
    if (!link->closing && !link->failed) stamp(link, before, total - link->len);
  } else if (nread < 0) {
    int code = UVW_ECONNRESET;
    if (nread == UV_ENOBUFS)
      uvw__error_nomem("read buffer");
    else {
      uvw_error_t *e = uvw__error_set(UVW_ECONNRESET, UVW_KIND_WOOL_ERROR, "connection lost: %s%s",
                                      uv_strerror((int)nread),
                                      link->len ? " (in the middle of a frame)" : "");
      uvw__error_field(e, "libuv_error", "%s", uv_err_name((int)nread));
      uvw__error_field(e, "buffered_bytes", "%zu", link->len);
    }
    fail(link, code);
  }
}

int uvw__link_start(uvw__link_t *link, uvw__link_frame_cb on_frame, uvw__link_fail_cb on_fail) {
  link->on_frame = on_frame;
  link->on_fail = on_fail;
  int rc = uv_read_start(&link->h.stream, on_alloc, on_read);
  link->reading = rc == 0;
  return rc;
}

typedef struct send_req_s {
  uv_write_t req;
  uint8_t header[HEADER];
  void *frame;
} send_req_t;

/* Backpressure: a peer that does not read its answers stops being read
 * (so it cannot make us produce more) until its queue drains to half. */
static void pause_if_full(uvw__link_t *link) {
  if (link->high_water == 0 || link->paused || link->closing || link->failed) return;
  if (uv_stream_get_write_queue_size(&link->h.stream) <= link->high_water) return;
  uv_read_stop(&link->h.stream);
  link->paused = 1;
  link->paused_since = uv_now(link->h.handle.loop);
}

static void on_written(uv_write_t *req, int status) {
  send_req_t *s = (send_req_t *)req;
  uvw__link_t *link = req->handle->data;
  (void)status; /* a failed write shows up as a read error / EOF too */
  uvw_free(s->frame);
  uvw__free(s);
  if (link->paused && !link->closing && !link->failed &&
      uv_stream_get_write_queue_size(&link->h.stream) <= link->high_water / 2) {
    link->paused = 0;
    link->paused_since = 0;
    drain(link); /* frames that arrived before the pause come first */
    link->partial_since = link->len ? uv_now(link->h.handle.loop) : 0;
    if (!link->paused && !link->closing && !link->failed && uv_read_start(&link->h.stream, on_alloc, on_read) != 0)
      link->reading = 0;
  }
}

int uvw__link_send(uvw__link_t *link, void *frame, size_t len) {
  if (link->closing || link->failed) {
    uvw_free(frame);
    uvw__error_set(UVW_ECONNRESET, UVW_KIND_WOOL_ERROR, "connection is closed");
    return UVW_ECONNRESET;
  }
  send_req_t *s = uvw__malloc(sizeof(*s));
  if (s == NULL) {
    uvw_free(frame);
    return uvw__error_nomem("frame write");
  }
  s->header[0] = (uint8_t)(len >> 24);
  s->header[1] = (uint8_t)(len >> 16);
  s->header[2] = (uint8_t)(len >> 8);
  s->header[3] = (uint8_t)len;
  s->frame = frame;
  uv_buf_t bufs[2] = {uv_buf_init((char *)s->header, HEADER), uv_buf_init(frame, (unsigned)len)};
  int rc = uv_write(&s->req, &link->h.stream, bufs, len ? 2 : 1, on_written);
  if (rc != 0) {
    uvw__error_set(UVW_ECONNRESET, UVW_KIND_WOOL_ERROR, "write failed: %s", uv_strerror(rc));
    uvw_free(s->frame);
    uvw__free(s);
    return UVW_ECONNRESET;
  }
  pause_if_full(link);
  return 0;
}

int uvw__link_send_frame(uvw__link_t *link, const uvw_frame_t *f) {
  void *buf;
  size_t len, mlen;
  uint8_t *mbytes;
  int rc = uvw__link_encode(link, f, &buf, &len, &mbytes, &mlen);
  uvw_frame_kind_t kind = uvw_frame_kind(f);
  return rc != 0 ? rc
                 : uvw__link_send_parts(link, buf, len, mbytes, mlen, kind == UVW_FRAME_TASK || kind == UVW_FRAME_ACK);
}

size_t uvw__link_decode_manifest(uvw__link_t *link, uvw_frame_t *f, size_t stub_budget) {
  /* No cache once closing: on_closed may have freed it already. */
  if (link->decoded == NULL && !link->closing) link->decoded = uvw__mcache_new();
  size_t cap = uvw_wire_stub_cap(), created = 0;
  uvw__frame_decode_manifest(f, stub_budget < cap ? stub_budget : cap, &created,
                             link->closing ? NULL : link->decoded);
  return created;
}

static void on_closed(uv_handle_t *h) {
  uvw__link_t *link = h->data;
  uvw__mcache_free(link->decoded);
  link->decoded = NULL;
  uvw__free(link->buf);
  link->buf = NULL;
  link->len = link->cap = 0;
  uvw__link_delta_free(link);
  if (link->on_closed) link->on_closed(link);
}

void uvw__link_close(uvw__link_t *link, uvw__link_closed_cb cb) {
  if (link->closing) return;
  link->closing = 1;
  link->on_closed = cb;
  uv_close(&link->h.handle, on_closed);
}

/* ---- addresses ---------------------------------------------------------------- */

static int bad_address(const char *address, const char *why) {
  uvw_error_t *e = uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "bad address \"%s\": %s", address, why);
  uvw__error_field(e, "address", "%s", address);
  return UVW_EINVAL;
}

int uvw__addr_parse(const char *address, uvw__addr_t *out) {
  memset(out, 0, sizeof(*out));
  if (address == NULL) return bad_address("", "NULL");
  if (strncmp(address, "pipe:", 5) == 0) {
    const char *path = address + 5;
    if (*path == '\0' || strlen(path) >= sizeof(out->path)) return bad_address(address, "empty or too long path");
    out->is_pipe = 1;
    strcpy(out->path, path);
    return 0;
  }
  if (strncmp(address, "tcp:", 4) != 0) return bad_address(address, "expected pipe:PATH or tcp:HOST:PORT");
  const char *host = address + 4, *colon = strrchr(host, ':');
  if (colon == NULL || colon == host || colon[1] == '\0') return bad_address(address, "expected tcp:HOST:PORT");
  char *end;
  unsigned long port = strtoul(colon + 1, &end, 10);
  if (*end != '\0' || port > 65535) return bad_address(address, "bad port");
  char h[64];
  size_t hl = (size_t)(colon - host);
  if (hl >= sizeof(h)) return bad_address(address, "host too long");
  memcpy(h, host, hl);
  h[hl] = '\0';
  if (strcmp(h, "localhost") == 0) strcpy(h, "127.0.0.1");
  if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {
    h[hl - 1] = '\0';
    if (uv_ip6_addr(h + 1, (int)port, (struct sockaddr_in6 *)&out->sa) == 0) return 0;
  } else if (uv_ip4_addr(h, (int)port, (struct sockaddr_in *)&out->sa) == 0) {
    return 0;
  }
  return bad_address(address, "host is not a numeric IPv4/[IPv6] address or localhost");
}

/* ---- the dispatch-id table ---------------------------------------------------- */

void uvw__idmap_init(uvw__idmap_t *m) { memset(m, 0, sizeof(*m)); }
void uvw__idmap_free(uvw__idmap_t *m) {
  uvw__free(m->buckets);
  memset(m, 0, sizeof(*m));
}

static size_t slot(const uvw__idmap_t *m, uint64_t id) {
  id ^= id >> 31;
  id *= 0x9e3779b97f4a7c15ULL;
  return (size_t)(id >> 17) & (m->nbuckets - 1);
}

static int grow(uvw__idmap_t *m) {
  size_t n = m->nbuckets ? m->nbuckets * 2 : 64;
  uvw__idnode_t **b = uvw__calloc(n, sizeof(*b));
  if (b == NULL) return uvw__error_nomem("dispatch table");
  uvw__idmap_t nm = {b, n, m->count, 0};
  for (size_t i = 0; i < m->nbuckets; i++)
    for (uvw__idnode_t *x = m->buckets[i], *next; x; x = next) {
      next = x->next;
      size_t s = slot(&nm, x->id);
      x->next = b[s];
      b[s] = x;
    }
  uvw__free(m->buckets);
  *m = nm;
  return 0;
}

int uvw__idmap_put(uvw__idmap_t *m, uvw__idnode_t *n) {
  if ((m->count + 1) * 4 > m->nbuckets * 3 && grow(m) != 0) return UVW_ENOMEM;
  size_t s = slot(m, n->id);
  n->next = m->buckets[s];
  m->buckets[s] = n;
  m->count++;
  if (s < m->scan) m->scan = s;
  return 0;
}

uvw__idnode_t *uvw__idmap_get(const uvw__idmap_t *m, uint64_t id) {
  if (m->nbuckets == 0) return NULL;
  for (uvw__idnode_t *x = m->buckets[slot(m, id)]; x; x = x->next)
    if (x->id == id) return x;
  return NULL;
}

void uvw__idmap_del(uvw__idmap_t *m, uvw__idnode_t *n) {
  if (m->nbuckets == 0) return;
  for (uvw__idnode_t **p = &m->buckets[slot(m, n->id)]; *p; p = &(*p)->next)
    if (*p == n) {
      *p = n->next;
      m->count--;
      return;
    }
}

uvw__idnode_t *uvw__idmap_pop(uvw__idmap_t *m) {
  for (size_t i = m->scan; m->count && i < m->nbuckets; i++)
    if (m->buckets[i]) {
      uvw__idnode_t *n = m->buckets[i];
      m->buckets[i] = n->next;
      m->count--;
      m->scan = i;
      return n;
    }
  m->scan = 0;
  return NULL;
}

uvw_error_t *uvw__dispatch_error(int code, const char *routine, const char *why) {
  uvw_error_t *e = uvw__error_new(code, UVW_KIND_WOOL_ERROR, "dispatch of \"%s\": %s", routine, why);
  uvw__error_field(e, "routine", "%s", routine);
  return e;
}
