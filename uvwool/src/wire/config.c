/* Wire limits, the protobuf-c glue (allocator, bounded unpack, pack) and the
 * warning plumbing shared by encode and decode. */
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "var.h"
#include "wire_int.h"

#define DEFAULT_MAX_SIZE ((size_t)16 << 20)
#define DEFAULT_STUB_CAP ((size_t)128)

static atomic_size_t max_size = DEFAULT_MAX_SIZE;
static atomic_size_t stub_cap = DEFAULT_STUB_CAP;

void uvw_wire_set_max_size(size_t bytes) { atomic_store(&max_size, bytes ? bytes : DEFAULT_MAX_SIZE); }
size_t uvw_wire_max_size(void) { return atomic_load_explicit(&max_size, memory_order_relaxed); }
void uvw_wire_set_stub_cap(size_t stubs) { atomic_store(&stub_cap, stubs ? stubs : DEFAULT_STUB_CAP); }
size_t uvw_wire_stub_cap(void) { return atomic_load_explicit(&stub_cap, memory_order_relaxed); }
size_t uvw_wire_stub_count(void) { return uvw__var_stub_count(); }

/* ---- protobuf-c glue ------------------------------------------------------- */


static int read_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64 && *i < n; shift += 7) {
    uint8_t b = p[(*i)++];
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return 1;
    }
  }
  return 0;
}

/* -1 when nesting exceeds the limit, -2 when the input holds more than
 * UVW__WIRE_MAX_MESSAGES messages in all (*count), -3 when a string field
 * holds a NUL byte. protobuf-c hands strings over NUL-terminated, so
 * "ctx\0x" would arrive as the routine "ctx" and ("h\0x", "rid\0y") as the
 * key (h, rid): a name that is not what the peer sent is refused here, for
 * every message decoded. Anything else malformed is left for protobuf-c to
 * report (return 0): this pass only bounds recursion and the number of
 * objects the unpack would allocate (16 MiB of one-byte arguments are five
 * million of them, seconds of work). */
static int depth_scan(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n, int depth, size_t *count) {
  if (depth > UVW__WIRE_MAX_DEPTH) return -1;
  size_t i = 0;
  while (i < n) {
    uint64_t key, len;
    if (!read_varint(p, n, &i, &key)) return 0;
    switch (key & 7) {
      case 0:
        if (!read_varint(p, n, &i, &len)) return 0;
        break;
      case 1:
        if (n - i < 8) return 0;
        i += 8;
        break;
      case 5:
        if (n - i < 4) return 0;
        i += 4;
        break;
      case 2: {
        if (!read_varint(p, n, &i, &len) || len > n - i) return 0;
        uint64_t num = key >> 3;
        const ProtobufCFieldDescriptor *f =
            num <= 0x1fffffff ? protobuf_c_message_descriptor_get_field(d, (unsigned)num) : NULL;
        if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING && memchr(p + i, 0, (size_t)len)) return -3;
        if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE) {
          if (++*count > UVW__WIRE_MAX_MESSAGES) return -2;
          int rc = depth_scan(f->descriptor, p + i, (size_t)len, depth + 1, count);
          if (rc < 0) return rc;
        }
        i += (size_t)len;
        break;
      }
      default:
        return 0;
    }
  }
  return 0;
}

int uvw__wire_too_big(const char *what, size_t len) {
  uvw_error_t *e = uvw__error_set(UVW_ETOOBIG, UVW_KIND_SERIALIZATION_ERROR,
                                  "%s is %zu bytes, over the wire size limit of %zu bytes", what, len,
                                  uvw_wire_max_size());
  uvw__error_field(e, "size", "%zu", len);
  uvw__error_field(e, "limit", "%zu", uvw_wire_max_size());
  return UVW_ETOOBIG;
}

static int malformed(const char *what, const char *reason, size_t len) {
  uvw_error_t *e = uvw__error_set(UVW_EMALFORMED, UVW_KIND_SERIALIZATION_ERROR, "malformed %s: %s", what, reason);
  uvw__error_field(e, "what", "%s", what);
  uvw__error_field(e, "reason", "%s", reason);
  uvw__error_field(e, "size", "%zu", len);
  return UVW_EMALFORMED;
}

/* Unpacking allocates once per message, string and repeated array (about
 * five allocations per manifest entry). A bump arena turns that into one or
 * two allocations per decode, which is most of the decode cost; the whole
 * message is dropped at once with the arena. Every block still comes from
 * uvwool's allocator, so failure injection reaches it. */
typedef struct block_s {
  struct block_s *next;
  size_t used, cap;
  _Alignas(max_align_t) unsigned char data[];
} block_t;

struct uvw__arena_s {
  block_t *head;
  int refused; /* an allocation failed: protobuf-c reports it as bad input */
};

static void *arena_alloc(void *arg, size_t size) {
  uvw__arena_t *a = arg;
  size = (size + (_Alignof(max_align_t) - 1)) & ~(size_t)(_Alignof(max_align_t) - 1);
  if (size == 0) size = _Alignof(max_align_t);
  block_t *b = a->head;
  if (b == NULL || b->cap - b->used < size) {
    size_t cap = b ? b->cap * 2 : 2048;
    if (cap < size) cap = size;
    block_t *nb = uvw__malloc(sizeof(*nb) + cap);
    if (nb == NULL) {
      a->refused = 1;
      return NULL;
    }
    nb->next = b;
    nb->used = 0;
    nb->cap = cap;
    a->head = b = nb;
  }
  void *p = b->data + b->used;
  b->used += size;
  return p;
}
static void arena_noop_free(void *arg, void *ptr) {
  (void)arg;
  (void)ptr;
}

void uvw__arena_free(uvw__arena_t *a) {
  if (a == NULL) return;
  for (block_t *b = a->head, *next; b; b = next) {
    next = b->next;
    uvw__free(b);
  }
  uvw__free(a);
}

int uvw__wire_unpack(const ProtobufCMessageDescriptor *desc, const void *data, size_t len, const char *what,
                     ProtobufCMessage **out, uvw__arena_t **arena) {
  *out = NULL;
  *arena = NULL;
  if (len > uvw_wire_max_size()) return uvw__wire_too_big(what, len);
  if (data == NULL && len != 0) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "%s: data is NULL", what);
    return UVW_EINVAL;
  }
  static const uint8_t empty[1] = {0};
  const uint8_t *p = len ? data : empty;
  size_t count = 0;
  int scan = depth_scan(desc, p, len, 1, &count);
  if (scan == -1) return malformed(what, "messages nested too deeply", len);
  if (scan == -2) {
    uvw_error_t *e = uvw__error_set(UVW_ETOOBIG, UVW_KIND_SERIALIZATION_ERROR,
                                    "%s holds more than %d messages (values, entries, error fields)", what,
                                    UVW__WIRE_MAX_MESSAGES);
    uvw__error_field(e, "what", "%s", what);
    uvw__error_field(e, "limit", "%d", UVW__WIRE_MAX_MESSAGES);
    return UVW_ETOOBIG;
  }
  if (scan == -3) return malformed(what, "a string (a name or a text) holds a NUL byte", len);
  uvw__arena_t *a = uvw__calloc(1, sizeof(*a));
  if (a == NULL) return uvw__error_nomem(what);
  ProtobufCAllocator alloc = {arena_alloc, arena_noop_free, a};
  ProtobufCMessage *m = protobuf_c_message_unpack(desc, &alloc, len, p);
  if (m == NULL) {
    int refused = a->refused;
    uvw__arena_free(a);
    if (refused) return uvw__error_nomem(what);
    return malformed(what, "not a valid protobuf encoding (truncated or corrupt)", len);
  }
  *out = m;
  *arena = a;
  return 0;
}

int uvw__wire_pack(const ProtobufCMessage *msg, const char *what, void **out, size_t *len) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  *out = NULL;
  *len = 0;
  if (n > uvw_wire_max_size()) return uvw__wire_too_big(what, n);
  if (n == 0) return 0;
  uint8_t *buf = uvw__malloc(n);
  if (buf == NULL) return uvw__error_nomem(what);
  protobuf_c_message_pack(msg, buf);
  *out = buf;
  *len = n;
  return 0;
}

/* ---- warnings ------------------------------------------------------------------ */

uvw_error_t *uvw__wire_warning(const char *ns, const char *name, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  uvw_error_t *w = uvw__error_newv(UVW_ESERIALIZE, UVW_KIND_SERIALIZATION_WARNING, fmt, ap);
  va_end(ap);
  if (ns) uvw__error_field(w, "namespace", "%s", ns);
  if (name) uvw__error_field(w, "name", "%s", name);
  return w;
}

int uvw__warnlist_add(uvw__warnlist_t *l, uvw_error_t *w) {
  if (w == NULL) return uvw__error_nomem("warning");
  if (l->n >= UVW__WIRE_KEPT_WARNINGS) {
    uvw_error_unref(w);
    l->dropped++;
    return 0;
  }
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 4;
    uvw_error_t **v = uvw__realloc(l->v, cap * sizeof(*v));
    if (v == NULL) {
      uvw_error_unref(w);
      return uvw__error_nomem("warning list");
    }
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = w;
  return 0;
}

void uvw__warnlist_drop(uvw__warnlist_t *l) {
  for (size_t i = 0; i < l->n; i++) uvw_error_unref(l->v[i]);
  uvw__free(l->v);
  l->v = NULL;
  l->n = l->cap = l->dropped = 0;
}

static int settle(uvw_error_t **warnings, size_t n, size_t failures, const char *what);

int uvw__wire_settle_list(uvw__warnlist_t *l, const char *what) {
  size_t failures = l->n + l->dropped;
  if (l->dropped > 0) {
    uvw_error_t *more = uvw__wire_warning(NULL, NULL, "%s: %zu more warning%s not shown", what, l->dropped,
                                          l->dropped == 1 ? "" : "s");
    uvw__error_field(more, "suppressed", "%zu", l->dropped);
    uvw_error_t **v = more ? uvw__realloc(l->v, (l->n + 1) * sizeof(*v)) : NULL;
    if (v != NULL) {
      l->v = v;
      l->cap = l->n + 1;
      v[l->n++] = more;
    } else {
      uvw_error_unref(more); /* the count still reaches strict mode's `failures` */
    }
  }
  size_t n = l->n;
  l->n = 0;
  return settle(l->v, n, failures, what);
}

static int settle(uvw_error_t **warnings, size_t n, size_t failures, const char *what) {
  if (n == 0) return 0;
  if (!uvw_strict()) {
    for (size_t i = 0; i < n; i++) uvw__warn(warnings[i]);
    return 0;
  }
  /* One error naming every failure: the message lists the first few (a
   * log line stays readable), the aggregated warnings carry them all. */
  char list[512];
  size_t used = 0;
  list[0] = '\0';
  for (size_t i = 0; i < n && used < sizeof(list) - 1; i++) {
    int k = snprintf(list + used, sizeof(list) - used, "%s%s", i ? "; " : "", uvw_error_message(warnings[i]));
    if (k < 0) break;
    used += (size_t)k;
  }
  if (used >= sizeof(list) - 1) memcpy(list + sizeof(list) - 4, "...", 4);
  uvw_error_t *e = uvw__error_new(UVW_ECHAINSERIALIZE, UVW_KIND_CHAIN_SERIALIZATION_ERROR,
                                  "%s: %zu failure%s (strict mode): %s", what, failures, failures == 1 ? "" : "s",
                                  list);
  uvw__error_field(e, "operation", "%s", what);
  uvw__error_field(e, "failures", "%zu", failures);
  for (size_t i = 0; i < n; i++) uvw__error_add_warning(e, warnings[i]);
  uvw__error_publish(e);
  return UVW_ECHAINSERIALIZE;
}

int uvw__wire_settle(uvw_error_t **warnings, size_t n, const char *what) {
  return settle(warnings, n, n, what);
}
