/* A connection's decoded manifests (wire_frame.h): a chain that dispatches
 * again with an unchanged context sends the same bytes, and decoding them
 * again would give the same manifest, so it is copied instead.
 *
 * "The same manifest" holds only for manifests whose decode depends on
 * their bytes alone: every entry kept (no warning, no duplicate, no policy
 * filtering) and no opaque value (a codec makes a new object each time, and
 * may be replaced). Others are not cached. A policy change since the decode
 * invalidates it. Stubs are fine (a declaration takes a stub over in place)
 * but a cached manifest holds its stubs, so a copy of it makes none and is
 * charged none: the cache holds at most MAX_STUBS, on top of the stubs the
 * connection's live dispatches may make.
 *
 * A kept manifest whose entries all carry a value also gets, at its first
 * copy, the map of those bindings, shared by every later copy: a mount into
 * a fresh context (a worker's one-shot dispatch) takes that map as it is,
 * with the encoding the first answer left on it (map.h's memo), so an
 * unchanged context is neither mounted nor encoded entry by entry again.
 * The map is never changed in place while the cache holds it: a routine's
 * set copies it. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "map.h"
#include "var.h"
#include "wire_frame.h"
#include "wire_int.h"

/* The bound a peer can make a connection keep: slots x bytes, plus the
 * decoded values of those bytes. */
#define SLOTS 8
#define MAX_BYTES 2048
#define MAX_STUBS 32

typedef struct {
  uint8_t *bytes; /* NULL: empty */
  size_t len;
  uint64_t stamp; /* uvw__var_policy_changes at the decode */
  uvw_manifest_t *m;
  size_t stubs;  /* the stubs m holds */
  int map_tried; /* give_map ran for m (it may have found a reset: no map) */
} slot_t;

struct uvw__mcache_s {
  slot_t slot[SLOTS];
  size_t stubs; /* held by all slots: at most MAX_STUBS */
  size_t hits;  /* tests */
};

uvw__mcache_t *uvw__mcache_new(void) { return uvw__calloc(1, sizeof(uvw__mcache_t)); }

static void slot_clear(uvw__mcache_t *c, slot_t *s) {
  c->stubs -= s->stubs;
  uvw__free(s->bytes);
  uvw_manifest_free(s->m);
  memset(s, 0, sizeof(*s));
}

void uvw__mcache_free(uvw__mcache_t *c) {
  if (c == NULL) return;
  for (size_t i = 0; i < SLOTS; i++) slot_clear(c, &c->slot[i]);
  uvw__free(c);
}

size_t uvw__mcache_hits(const uvw__mcache_t *c) { return c ? c->hits : 0; }

/* The slot of a manifest: by its chain id, which uvwool's encoder writes
 * first (field 1, 32 hex digits); other layouts share slot 0. */
static slot_t *slot_of(uvw__mcache_t *c, const uint8_t *data, size_t len) {
  if (len < 34 || data[0] != 0x0a || data[1] != 32) return &c->slot[0];
  uint32_t h = 2166136261u;
  for (size_t i = 2; i < 34; i++) h = (h ^ data[i]) * 16777619u;
  return &c->slot[h % SLOTS];
}

static uvw_manifest_t *clone(const uvw_manifest_t *m) {
  uvw_manifest_t *copy = uvw__malloc(sizeof(*copy));
  if (copy == NULL) return NULL;
  *copy = *m;
  uvw__map_ref(copy->map);
  if ((copy->entries = uvw__malloc((m->n ? m->n : 1) * sizeof(*copy->entries))) == NULL) {
    uvw__map_unref(copy->map);
    uvw__free(copy);
    return NULL;
  }
  for (size_t i = 0; i < m->n; i++) {
    copy->entries[i] = m->entries[i];
    uvw__value_ref(copy->entries[i].value);
    uvw__var_hold(&copy->entries[i].var, 1); /* a stub's hold; nothing for a declared variable */
  }
  return copy;
}

/* The map of m's bindings for m->map, when every entry has a value (a
 * pending reset is not a binding). Out of memory only means no map. */
static void give_map(uvw_manifest_t *m) {
  for (size_t i = 0; i < m->n; i++)
    if (m->entries[i].value == NULL) return;
  uvw__map_t *map = NULL;
  for (size_t i = 0; i < m->n; i++)
    if (uvw__map_set(&map, m->entries[i].var, m->entries[i].value) != 0) {
      uvw__map_unref(map);
      return;
    }
  m->map = map;
}

/* Whether decoding these bytes again would give m again (see the top);
 * *stubs gets how many stubs m holds. */
static int bytes_alone(const uvw_manifest_t *m, const uint8_t *data, size_t len, size_t *stubs) {
  *stubs = 0;
  if (uvw__manifest_entry_fields(data, len) != m->n) return 0;
  for (size_t i = 0; i < m->n; i++) {
    if (m->entries[i].value != NULL && m->entries[i].value->kind == UVW_VALUE_OPAQUE) return 0;
    *stubs += atomic_load(&m->entries[i].var->is_stub) != 0;
  }
  return 1;
}

int uvw__mcache_decode(uvw__mcache_t *c, const uint8_t *data, size_t len, size_t stub_budget,
                       uvw_manifest_t **out, size_t *created) {
  uint64_t stamp = atomic_load(&uvw__var_policy_changes);
  slot_t *s = c && len > 0 && len <= MAX_BYTES ? slot_of(c, data, len) : NULL;
  if (s && s->bytes && s->len == len && s->stamp == stamp && memcmp(s->bytes, data, len) == 0) {
    if (created) *created = 0;
    if (!s->map_tried) {
      give_map(s->m);
      s->map_tried = 1;
    }
    if ((*out = clone(s->m)) == NULL) return uvw__error_nomem("manifest");
    c->hits++;
    return 0;
  }
  int rc = uvw__manifest_decode_budget(data, len, stub_budget, out, created);
  size_t stubs;
  if (rc != 0 || s == NULL || !bytes_alone(*out, data, len, &stubs)) return rc;
  if (c->stubs - s->stubs + stubs > MAX_STUBS) return 0;
  /* Out of memory here only means no cache entry. */
  uint8_t *bytes = uvw__malloc(len);
  uvw_manifest_t *kept = bytes ? clone(*out) : NULL;
  if (kept == NULL) {
    uvw__free(bytes);
    return 0;
  }
  slot_clear(c, s);
  memcpy(bytes, data, len);
  *s = (slot_t){bytes, len, stamp, kept, stubs, 0};
  c->stubs += stubs;
  return 0;
}
