/* Delta manifests: the book of kept manifests and the two operations on it
 * (wire_delta.h has the rules both sides follow).
 *
 * Everything here works on bytes: a manifest is kept as the bytes that
 * crossed the connection, each entry as the span of its Entry message, and
 * a delta carries entries as those same bytes. Nothing is decoded, so the
 * receiver's rebuilt manifest goes through the one full-manifest decoder
 * (stub budget, warnings, strict mode and all): what is mounted is what the
 * full manifest would have mounted. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "pbscan.h"
#include "wire_delta.h"

/* ChainManifest's and ManifestDelta's fields (proto/uvwool.proto). */
enum { MANIFEST_ID = 1, MANIFEST_ENTRIES = 2 };
enum { DELTA_ID = 1, DELTA_BASE = 2, DELTA_CHANGED = 3, DELTA_DROPPED = 4 };
enum { ENTRY_NAMESPACE = 1, ENTRY_NAME = 2 };

/* An Entry inside some buffer: the message's span and its key's spans. */
typedef struct {
  const uint8_t *msg, *ns, *name;
  size_t msg_len, ns_len, name_len;
} dentry_t;

typedef struct {
  uint8_t *bytes; /* the ChainManifest kept, owned; the spans point into it */
  size_t len;
  const uint8_t *id;
  size_t id_len;
  dentry_t *e;
  size_t n;
  uint64_t version, used;
} dchain_t;

struct uvw__delta_book_s {
  dchain_t *chains; /* unordered; found by id, evicted by `used` */
  size_t n, max;
  uint64_t clock;
};

/* A manifest (or a delta) parsed: spans into the caller's buffer. */
typedef struct {
  const uint8_t *id;
  size_t id_len;
  dentry_t *e;
  size_t n, cap;
} parsed_t;

static int span_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  int c = memcmp(a, b, alen < blen ? alen : blen);
  return c ? c : (alen > blen) - (alen < blen);
}

static int key_cmp(const dentry_t *a, const dentry_t *b) {
  int c = span_cmp(a->ns, a->ns_len, b->ns, b->ns_len);
  return c ? c : span_cmp(a->name, a->name_len, b->name, b->name_len);
}

/* An Entry's key: 1, or 0 when it lacks one or names either part twice. */
static int entry_key(const uint8_t *msg, size_t len, dentry_t *out) {
  *out = (dentry_t){msg, NULL, NULL, len, 0, 0};
  size_t i = 0;
  uvw__pb_field_t f;
  int rc;
  while ((rc = uvw__pb_next(msg, len, &i, &f)) == 1) {
    if (f.type != UVW__PB_BYTES || (f.number != ENTRY_NAMESPACE && f.number != ENTRY_NAME)) continue;
    const uint8_t **part = f.number == ENTRY_NAMESPACE ? &out->ns : &out->name;
    if (*part != NULL) return 0;
    *part = f.data;
    *(f.number == ENTRY_NAMESPACE ? &out->ns_len : &out->name_len) = f.len;
  }
  return rc == 0 && out->ns != NULL && out->name != NULL;
}

static int push_entry(parsed_t *p, const dentry_t *e) {
  if (p->n == p->cap) {
    size_t cap = p->cap ? 2 * p->cap : 8;
    dentry_t *grown = uvw__realloc(p->e, cap * sizeof(*grown));
    if (grown == NULL) return -1;
    p->e = grown;
    p->cap = cap;
  }
  p->e[p->n++] = *e;
  return 0;
}

static int id_ok(const uint8_t *id, size_t len) {
  if (len == 0 || len > UVW__DELTA_MAX_ID) return 0;
  for (size_t i = 0; i < len; i++)
    if (id[i] < 0x21 || id[i] > 0x7e) return 0;
  return 1;
}

/* Parse a ChainManifest by the keepable rules: 1 keepable, 0 not (p->id
 * may still name its chain), -1 out of memory. */
static int parse_full(const uint8_t *bytes, size_t len, parsed_t *p) {
  *p = (parsed_t){0};
  int keepable = len <= UVW__DELTA_MAX_BASE_BYTES;
  size_t i = 0;
  uvw__pb_field_t f;
  int rc;
  size_t canonical = 0; /* the length of the same fields written as merge writes them */
  while ((rc = uvw__pb_next(bytes, len, &i, &f)) == 1) {
    canonical += f.type == UVW__PB_BYTES ? uvw__pb_bytes_size((uint32_t)f.number, f.len) : len + 1;
    if (f.number == MANIFEST_ID && f.type == UVW__PB_BYTES) {
      if (p->id != NULL || p->n != 0) keepable = 0; /* once, and first */
      p->id = f.data;
      p->id_len = f.len;
    } else if (f.number == MANIFEST_ENTRIES && f.type == UVW__PB_BYTES && keepable) {
      dentry_t e;
      if (!entry_key(f.data, f.len, &e) || (p->n && key_cmp(&p->e[p->n - 1], &e) >= 0))
        keepable = 0;
      else if (push_entry(p, &e) != 0)
        return -1;
    } else {
      keepable = 0;
    }
  }
  /* Canonical (the id first, minimal lengths), so that the receiver's
   * rebuild is these very bytes. */
  if (canonical != len) keepable = 0;
  if (rc != 0 || p->id == NULL || !id_ok(p->id, p->id_len)) {
    keepable = 0;
    if (p->id != NULL && !id_ok(p->id, p->id_len)) p->id = NULL;
  }
  return keepable;
}

/* ---- the book --------------------------------------------------------------------- */

uvw__delta_book_t *uvw__delta_book_new(size_t max_chains) {
  uvw__delta_book_t *b = uvw__calloc(1, sizeof(*b));
  if (b == NULL) return NULL;
  b->max = max_chains < UVW__DELTA_MAX_CHAINS ? max_chains : UVW__DELTA_MAX_CHAINS;
  return b;
}

static void chain_clear(dchain_t *c) {
  uvw__free(c->bytes);
  uvw__free(c->e);
}

void uvw__delta_book_free(uvw__delta_book_t *b) {
  if (b == NULL) return;
  for (size_t i = 0; i < b->n; i++) chain_clear(&b->chains[i]);
  uvw__free(b->chains);
  uvw__free(b);
}

size_t uvw__delta_book_count(const uvw__delta_book_t *b) { return b ? b->n : 0; }

static dchain_t *find(uvw__delta_book_t *b, const uint8_t *id, size_t len) {
  for (size_t i = 0; i < b->n; i++)
    if (b->chains[i].id_len == len && memcmp(b->chains[i].id, id, len) == 0) return &b->chains[i];
  return NULL;
}

static void drop_at(uvw__delta_book_t *b, dchain_t *c) {
  chain_clear(c);
  *c = b->chains[--b->n];
}

void uvw__delta_book_forget(uvw__delta_book_t *b, const void *id, size_t len) {
  dchain_t *c = b && id ? find(b, id, len) : NULL;
  if (c) drop_at(b, c);
}

static void evict_to(uvw__delta_book_t *b, size_t max) {
  while (b->n > max) {
    dchain_t *oldest = &b->chains[0];
    for (size_t i = 1; i < b->n; i++)
      if (b->chains[i].used < oldest->used) oldest = &b->chains[i];
    drop_at(b, oldest);
  }
}

void uvw__delta_book_shrink(uvw__delta_book_t *b, size_t max_chains) {
  if (b == NULL || max_chains >= b->max) return;
  b->max = max_chains;
  evict_to(b, max_chains);
}

/* Keep `bytes` (taken: freed on failure too), parsed as p (its spans point
 * into bytes; its entry array is taken), as the chain's state at version.
 * The chain becomes the most recently used. 0 or -1 (out of memory; the
 * chain is then forgotten). */
static int keep(uvw__delta_book_t *b, uint8_t *bytes, size_t len, parsed_t *p, uint64_t version) {
  dchain_t *c = find(b, p->id, p->id_len);
  if (b->max == 0) {
    uvw__free(bytes);
    uvw__free(p->e);
    return 0;
  }
  if (c == NULL) {
    if (b->n == b->max) evict_to(b, b->max - 1);
    if (b->n == 0 || (b->n & (b->n - 1)) == 0) { /* grow at powers of two */
      dchain_t *grown = uvw__realloc(b->chains, (b->n ? 2 * b->n : 1) * sizeof(*grown));
      if (grown == NULL) {
        uvw__free(bytes);
        uvw__free(p->e);
        return -1;
      }
      b->chains = grown;
    }
    c = &b->chains[b->n++];
  } else {
    chain_clear(c);
  }
  *c = (dchain_t){bytes, len, p->id, p->id_len, p->e, p->n, version, ++b->clock};
  return 0;
}

/* Forget every chain the manifest names (each field 1), allocating
 * nothing: out of memory before the manifest was copied or fully parsed,
 * its chain must still be forgotten, or this side would keep an older
 * version than the other side's. */
static void forget_named(uvw__delta_book_t *b, const uint8_t *bytes, size_t len) {
  size_t i = 0;
  uvw__pb_field_t f;
  while (uvw__pb_next(bytes, len, &i, &f) == 1)
    if (f.number == MANIFEST_ID && f.type == UVW__PB_BYTES) uvw__delta_book_forget(b, f.data, f.len);
}

/* Copy `full`, parse the copy and keep it when keepable, else forget its
 * chain. 0, or -1 out of memory (chain forgotten). */
static int record_copy(uvw__delta_book_t *b, const uint8_t *full, size_t len, uint64_t version) {
  uint8_t *copy = uvw__malloc(len ? len : 1);
  if (copy == NULL) {
    forget_named(b, full, len);
    return -1;
  }
  if (len) memcpy(copy, full, len);
  parsed_t p;
  int keepable = parse_full(copy, len, &p);
  if (keepable == 1) return keep(b, copy, len, &p, version);
  if (keepable < 0) forget_named(b, copy, len); /* the id may follow where parsing stopped */
  if (p.id) uvw__delta_book_forget(b, p.id, p.id_len);
  uvw__free(p.e);
  uvw__free(copy);
  return keepable;
}

/* ---- sender ----------------------------------------------------------------------- */

static size_t put_dropped(uint8_t *out, const dentry_t *e) {
  size_t klen = uvw__pb_bytes_size(ENTRY_NAMESPACE, e->ns_len) + uvw__pb_bytes_size(ENTRY_NAME, e->name_len);
  size_t k = uvw__pb_put_varint(out, ((uint64_t)DELTA_DROPPED << 3) | UVW__PB_BYTES);
  k += uvw__pb_put_varint(out + k, klen);
  k += uvw__pb_put_bytes(out + k, ENTRY_NAMESPACE, e->ns, e->ns_len);
  k += uvw__pb_put_bytes(out + k, ENTRY_NAME, e->name, e->name_len);
  return k;
}

/* Bytes build_delta may write at most. */
static size_t delta_bound(const dchain_t *old, size_t new_len) { return old->len + new_len + 64; }

/* The delta from `old` to `now` (both keepable, same chain) into out. */
static size_t build_delta(const dchain_t *old, const parsed_t *now, uint8_t *out) {
  size_t k = uvw__pb_put_bytes(out, DELTA_ID, now->id, now->id_len);
  k += uvw__pb_put_uint(out + k, DELTA_BASE, old->version);
  size_t i = 0; /* both lists ascend: one walk finds the changes */
  for (size_t j = 0; j < now->n; j++) {
    while (i < old->n && key_cmp(&old->e[i], &now->e[j]) < 0) i++;
    const dentry_t *e = &now->e[j];
    int same = i < old->n && key_cmp(&old->e[i], e) == 0 && old->e[i].msg_len == e->msg_len &&
               memcmp(old->e[i].msg, e->msg, e->msg_len) == 0;
    if (!same) k += uvw__pb_put_bytes(out + k, DELTA_CHANGED, e->msg, e->msg_len);
  }
  size_t j = 0; /* and one more the keys no longer there */
  for (i = 0; i < old->n; i++) {
    while (j < now->n && key_cmp(&now->e[j], &old->e[i]) < 0) j++;
    if (j == now->n || key_cmp(&now->e[j], &old->e[i]) != 0) k += put_dropped(out + k, &old->e[i]);
  }
  return k;
}

/* Point p's spans, parsed in `from`, at the same bytes copied to `to`. */
static void rebase(parsed_t *p, const uint8_t *from, const uint8_t *to) {
  p->id = to + (p->id - from);
  for (size_t i = 0; i < p->n; i++) {
    dentry_t *e = &p->e[i];
    e->msg = to + (e->msg - from);
    e->ns = to + (e->ns - from);
    e->name = to + (e->name - from);
  }
}

/* The chain whose kept bytes are exactly full[0..len) (a kept manifest's
 * id is its first field), or NULL. */
static dchain_t *kept_as_is(uvw__delta_book_t *b, const uint8_t *full, size_t len) {
  size_t i = 0;
  uvw__pb_field_t f;
  if (uvw__pb_next(full, len, &i, &f) != 1 || f.number != MANIFEST_ID || f.type != UVW__PB_BYTES) return NULL;
  dchain_t *c = find(b, f.data, f.len);
  return c && c->len == len && memcmp(c->bytes, full, len) == 0 ? c : NULL;
}

/* The delta of a manifest equal to the one kept: its id and base only. The
 * book's state is the same bytes at the next version. */
static int unchanged_delta(uvw__delta_book_t *b, dchain_t *c, uint8_t **delta, size_t *dlen) {
  uint8_t *out = uvw__malloc(c->id_len + 2 * UVW__PB_VARINT_MAX + 2);
  if (out == NULL) {
    drop_at(b, c); /* forgotten: the full manifest goes out */
    return uvw__error_nomem("delta manifest");
  }
  size_t k = uvw__pb_put_bytes(out, DELTA_ID, c->id, c->id_len);
  k += uvw__pb_put_uint(out + k, DELTA_BASE, c->version);
  c->version++;
  c->used = ++b->clock;
  *delta = out;
  *dlen = k;
  return 0;
}

int uvw__delta_send(uvw__delta_book_t *b, const uint8_t *full, size_t len, int allow, uint8_t **delta,
                    size_t *dlen) {
  *delta = NULL;
  *dlen = 0;
  /* The common case, a context that did not change: no parse, no copy. */
  dchain_t *same = allow && b->max > 0 ? kept_as_is(b, full, len) : NULL;
  if (same != NULL && same->id_len + 2 * UVW__PB_VARINT_MAX + 2 < len) return unchanged_delta(b, same, delta, dlen);
  parsed_t now;
  int keepable = parse_full(full, len, &now);
  if (keepable != 1) {
    if (keepable < 0) forget_named(b, full, len); /* the id may follow where parsing stopped */
    if (now.id) uvw__delta_book_forget(b, now.id, now.id_len);
    uvw__free(now.e);
    return keepable == 0 ? 0 : uvw__error_nomem("delta manifest");
  }
  dchain_t *old = allow && b->max > 0 ? find(b, now.id, now.id_len) : NULL;
  uint8_t *copy = uvw__malloc(len);
  uint8_t *out = copy && old ? uvw__malloc(delta_bound(old, len)) : NULL;
  if (copy == NULL || (old && out == NULL)) {
    uvw__delta_book_forget(b, now.id, now.id_len);
    uvw__free(now.e);
    uvw__free(copy);
    return uvw__error_nomem("delta manifest");
  }
  uint64_t version = 1;
  if (old != NULL) {
    size_t n = build_delta(old, &now, out);
    if (n < len) {
      *delta = out;
      *dlen = n;
      version = old->version + 1;
    } else {
      uvw__free(out);
    }
  }
  memcpy(copy, full, len);
  rebase(&now, full, copy);
  /* keep fails only for a chain new to the book: there is no delta then. */
  return keep(b, copy, len, &now, version) == 0 ? 0 : uvw__error_nomem("delta manifest");
}

/* ---- receiver --------------------------------------------------------------------- */

int uvw__delta_recv_full(uvw__delta_book_t *b, const uint8_t *full, size_t len) {
  return record_copy(b, full, len, 1) == 0 ? 0 : uvw__error_nomem("delta manifest");
}

/* The rebuilt manifest: base's entries with `changed` merged in and
 * `dropped` taken out, into out (sized by the caller). NULL, or a reason. */
static const char *merge(const dchain_t *base, const parsed_t *changed, const parsed_t *dropped, uint8_t *out,
                         size_t *len) {
  size_t k = uvw__pb_put_bytes(out, MANIFEST_ID, base->id, base->id_len);
  size_t j = 0, d = 0;
  for (size_t i = 0; i < base->n; i++) {
    const dentry_t *e = &base->e[i];
    for (; j < changed->n && key_cmp(&changed->e[j], e) < 0; j++)
      k += uvw__pb_put_bytes(out + k, MANIFEST_ENTRIES, changed->e[j].msg, changed->e[j].msg_len);
    int is_dropped = d < dropped->n && key_cmp(&dropped->e[d], e) == 0;
    d += is_dropped;
    if (j < changed->n && key_cmp(&changed->e[j], e) == 0) {
      if (is_dropped) return "an entry both changed and dropped";
      k += uvw__pb_put_bytes(out + k, MANIFEST_ENTRIES, changed->e[j].msg, changed->e[j].msg_len);
      j++;
    } else if (!is_dropped) {
      k += uvw__pb_put_bytes(out + k, MANIFEST_ENTRIES, e->msg, e->msg_len);
    }
  }
  for (; j < changed->n; j++)
    k += uvw__pb_put_bytes(out + k, MANIFEST_ENTRIES, changed->e[j].msg, changed->e[j].msg_len);
  if (d < dropped->n) return "a dropped entry the base does not hold";
  *len = k;
  return NULL;
}

/* A delta's fields, its entry lists parsed (spans into the delta). */
typedef struct {
  const uint8_t *id;
  size_t id_len;
  int has_base;
  uint64_t base;
  parsed_t changed, dropped;
  size_t entry_bytes; /* what the entries take in a manifest, at most */
} delta_t;

static const char *parse_delta(const uint8_t *p, size_t n, delta_t *d) {
  *d = (delta_t){0};
  size_t i = 0;
  uvw__pb_field_t f;
  int rc;
  while ((rc = uvw__pb_next(p, n, &i, &f)) == 1) {
    if (f.number == DELTA_ID && f.type == UVW__PB_BYTES && d->id == NULL) {
      d->id = f.data;
      d->id_len = f.len;
      if (!id_ok(d->id, d->id_len)) {
        d->id = NULL;
        return "a chain id no side keeps";
      }
    } else if (f.number == DELTA_BASE && f.type == UVW__PB_VARINT && !d->has_base) {
      d->has_base = 1;
      d->base = f.v;
    } else if ((f.number == DELTA_CHANGED || f.number == DELTA_DROPPED) && f.type == UVW__PB_BYTES) {
      parsed_t *list = f.number == DELTA_CHANGED ? &d->changed : &d->dropped;
      dentry_t e;
      if (!entry_key(f.data, f.len, &e)) return "an entry without one namespace and one name";
      if (list->n && key_cmp(&list->e[list->n - 1], &e) >= 0) return "entries out of order or repeated";
      if (push_entry(list, &e) != 0) return "out of memory";
      d->entry_bytes += f.len + 2 * UVW__PB_VARINT_MAX;
    } else {
      return "an unknown or repeated field";
    }
  }
  if (rc != 0) return "not a protobuf message";
  if (d->id == NULL) return "no chain id";
  if (!d->has_base) return "no base version";
  return NULL;
}

/* A delta that failed before its id was read: the id from the rest of it,
 * so the chain can still be forgotten on both sides. */
static void find_id(const uint8_t *p, size_t n, delta_t *d) {
  size_t i = 0;
  uvw__pb_field_t f;
  while (d->id == NULL && uvw__pb_next(p, n, &i, &f) == 1)
    if (f.number == DELTA_ID && f.type == UVW__PB_BYTES && id_ok(f.data, f.len)) {
      d->id = f.data;
      d->id_len = f.len;
    }
}

static int delta_failed(uvw__delta_book_t *b, const delta_t *d, const char *why,
                        char resync_id[UVW__DELTA_MAX_ID + 1]) {
  if (d->id != NULL) {
    memcpy(resync_id, d->id, d->id_len);
    resync_id[d->id_len] = '\0';
    uvw__delta_book_forget(b, d->id, d->id_len);
  }
  uvw__free(d->changed.e);
  uvw__free(d->dropped.e);
  if (strcmp(why, "out of memory") == 0) return uvw__error_nomem("manifest delta");
  uvw_error_t *e = uvw__error_set(UVW_EMALFORMED, UVW_KIND_SERIALIZATION_ERROR,
                                  "malformed manifest delta%s%s: %s (the sender is asked for a full manifest)",
                                  d->id ? " of chain " : "", d->id ? resync_id : "", why);
  uvw__error_field(e, "what", "manifest delta");
  uvw__error_field(e, "reason", "%s", why);
  if (d->id != NULL) uvw__error_field(e, "chain_id", "%s", resync_id);
  return UVW_EMALFORMED;
}

int uvw__delta_recv(uvw__delta_book_t *b, const uint8_t *delta, size_t dlen, uint8_t **full, size_t *flen,
                    char resync_id[UVW__DELTA_MAX_ID + 1]) {
  *full = NULL;
  *flen = 0;
  resync_id[0] = '\0';
  delta_t d;
  const char *why = parse_delta(delta, dlen, &d);
  if (why != NULL) {
    find_id(delta, dlen, &d);
    return delta_failed(b, &d, why, resync_id);
  }
  dchain_t *base = find(b, d.id, d.id_len);
  if (base == NULL) return delta_failed(b, &d, "no manifest of this chain is kept here", resync_id);
  if (base->version != d.base) {
    char detail[96];
    snprintf(detail, sizeof(detail), "against version %llu, but version %llu is kept here",
             (unsigned long long)d.base, (unsigned long long)base->version);
    return delta_failed(b, &d, detail, resync_id);
  }
  if (d.changed.n == 0 && d.dropped.n == 0) { /* unchanged: the kept bytes are the manifest */
    if ((*full = uvw__malloc(base->len)) == NULL) return delta_failed(b, &d, "out of memory", resync_id);
    memcpy(*full, base->bytes, base->len);
    *flen = base->len;
    base->version++;
    base->used = ++b->clock;
    return 0;
  }
  uint8_t *out = uvw__malloc(base->len + d.entry_bytes + 64), *result = NULL;
  size_t len = 0;
  why = out ? merge(base, &d.changed, &d.dropped, out, &len) : "out of memory";
  parsed_t p = {0};
  if (why == NULL) {
    int keepable = parse_full(out, len, &p);
    if (keepable != 1) why = keepable < 0 ? "out of memory" : "its result is not a manifest kept (too large)";
  }
  if (why == NULL && (result = uvw__malloc(len)) == NULL) why = "out of memory";
  if (why != NULL) {
    uvw__free(p.e);
    uvw__free(out);
    return delta_failed(b, &d, why, resync_id);
  }
  memcpy(result, out, len);
  uint64_t version = base->version + 1;
  uvw__free(d.changed.e);
  uvw__free(d.dropped.e);
  keep(b, out, len, &p, version); /* the chain is in the book: cannot fail */
  *full = result;
  *flen = len;
  return 0;
}
