/* ChainManifest encoding (docs/semantics.md §7): one entry per bound variable that
 * may cross the wire, one value-less entry per pending reset, sorted by
 * (namespace, name) bytewise so equal states give identical bytes.
 *
 * Values of the built-in kinds (all but opaque ones) are written by hand,
 * in one pass into one buffer, exactly as protobuf-c's pack would write
 * them (fields in number order); a manifest with an opaque value goes
 * through protobuf-c, since its codec may fail and drop the entry.
 *
 * A context that did not change since its last dispatch is the common case
 * (docs/wire.md, "What an unchanged context costs"): the entries of a map
 * are kept with it as a memo (map.h), so encoding it again is a copy. */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "context.h"
#include "error.h"
#include "pbscan.h"
#include "var.h"
#include "wire_int.h"

typedef struct {
  uvw_var_t *var;
  uvw_value_t *value; /* borrowed from the map snapshot; NULL: reset */
  /* Set by entries_size for the hand writer: the key's lengths, the
   * Value message's size, the Entry message's size. */
  size_t ns_len, name_len, value_len, entry_len;
} item_t;

typedef struct {
  item_t *items;
  size_t n, cap;
  int nomem;
} collect_t;

static void push(collect_t *c, uvw_var_t *var, uvw_value_t *value) {
  if (c->nomem || !(uvw_var_policy(var) & UVW_PROPAGATE_WIRE)) return;
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    item_t *items = uvw__realloc(c->items, cap * sizeof(*items));
    if (items == NULL) {
      c->nomem = 1;
      return;
    }
    c->items = items;
    c->cap = cap;
  }
  c->items[c->n].var = var;
  c->items[c->n].value = value;
  c->n++;
}

static void visit(const void *key, uvw_value_t *value, void *arg) { push(arg, (uvw_var_t *)key, value); }

/* strcmp compares as unsigned char: exactly the bytewise order. Keys are
 * unique (a key is never both bound and pending), so no tie-break. */
static int key_cmp(const uvw_var_t *x, const uvw_var_t *y) {
  int c = strcmp(x->ns, y->ns);
  return c ? c : strcmp(x->name, y->name);
}

static int by_key(const void *a, const void *b) {
  return key_cmp(((const item_t *)a)->var, ((const item_t *)b)->var);
}

/* A context holds a few variables: an insertion sort beats qsort's calls
 * through a function pointer there. */
static void sort_items(item_t *items, size_t n) {
  if (n > 16) {
    qsort(items, n, sizeof(*items), by_key);
    return;
  }
  for (size_t i = 1; i < n; i++) {
    item_t it = items[i];
    size_t j = i;
    for (; j > 0 && key_cmp(items[j - 1].var, it.var) > 0; j--) items[j] = items[j - 1];
    items[j] = it;
  }
}

typedef struct {
  Uvwool__Entry *entries;
  Uvwool__Entry **ptrs;
  Uvwool__Value *values;
  Uvwool__Opaque *opaques;
  uvw_value_t **holds;
  size_t nholds;
} scratch_t;

static void scratch_free(scratch_t *s) {
  for (size_t i = 0; i < s->nholds; i++) uvw__value_unref(s->holds[i]);
  uvw__free(s->entries);
  uvw__free(s->ptrs);
  uvw__free(s->values);
  uvw__free(s->opaques);
  uvw__free(s->holds);
}

/* Through protobuf-c: for manifests with an opaque value. */
static int pack_items(const uvw__chain_t *chain, item_t *items, size_t n, unsigned flags, void **out,
                      size_t *len) {
  scratch_t s = {0};
  uvw__warnlist_t warnings = {0};
  int rc = 0;
  size_t m = n ? n : 1;
  s.entries = uvw__malloc(m * sizeof(*s.entries));
  s.ptrs = uvw__malloc(m * sizeof(*s.ptrs));
  s.values = uvw__malloc(m * sizeof(*s.values));
  s.opaques = uvw__malloc(m * sizeof(*s.opaques));
  s.holds = uvw__malloc(m * sizeof(*s.holds));
  if (!s.entries || !s.ptrs || !s.values || !s.opaques || !s.holds) {
    scratch_free(&s);
    return uvw__error_nomem("manifest");
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    Uvwool__Entry *e = &s.entries[k];
    uvwool__entry__init(e);
    e->namespace_ = items[i].var->ns;
    e->name = items[i].var->name;
    if (items[i].value != NULL) {
      char why[160];
      uvw_value_t *hold = NULL;
      uvwool__value__init(&s.values[k]);
      if (uvw__value_to_pb(items[i].value, &s.values[k], &s.opaques[k], &hold, why, sizeof(why)) != 0) {
        /* The key is dropped entirely: sending a reset instead would make
         * the receiver unbind a value it may hold legitimately. */
        uvw_error_t *w = uvw__wire_warning(e->namespace_, e->name, "cannot encode (%s, %s): %s", e->namespace_,
                                           e->name, why);
        if ((rc = uvw__warnlist_add(&warnings, w)) != 0) break;
        continue;
      }
      if (hold) s.holds[s.nholds++] = hold;
      e->value = &s.values[k];
    }
    s.ptrs[k] = e;
    k++;
  }
  if (rc == 0) {
    rc = uvw__wire_settle_list(&warnings, "manifest encode"); /* consumes them */
  }
  if (rc == 0) {
    char id[33];
    Uvwool__ChainManifest msg = UVWOOL__CHAIN_MANIFEST__INIT;
    if (!(flags & UVW__MANIFEST_NO_ID)) {
      uvw__chain_id_hex(chain, id);
      msg.id = id;
    }
    msg.n_entries = k;
    msg.entries = s.ptrs;
    rc = uvw__wire_pack(&msg.base, "manifest", out, len);
  }
  uvw__warnlist_drop(&warnings);
  scratch_free(&s);
  return rc;
}

/* ---- the built-in kinds, by hand ---- */

static int builtin_only(const item_t *items, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (items[i].value != NULL && items[i].value->kind == UVW_VALUE_OPAQUE) return 0;
  return 1;
}

static size_t varint_size(uint64_t v) {
  size_t k = 1;
  while (v >= 0x80) {
    v >>= 7;
    k++;
  }
  return k;
}

static uint64_t zigzag(int64_t i) { return ((uint64_t)i << 1) ^ (uint64_t)(i >> 63); }

static size_t bytes_field_size(size_t len) { return 1 + varint_size(len) + len; } /* field numbers < 16 */

/* The size of a Value message: its one field. */
static size_t value_size(const uvw_value_t *v) {
  switch (v->kind) {
    case UVW_VALUE_NIL:
    case UVW_VALUE_BOOL:
      return 2;
    case UVW_VALUE_INT:
      return 1 + varint_size(zigzag(v->u.i));
    case UVW_VALUE_DOUBLE:
      return 9;
    default: /* string, bytes */
      return bytes_field_size(v->len);
  }
}

static void measure_entry(item_t *it) {
  it->ns_len = strlen(it->var->ns);
  it->name_len = strlen(it->var->name);
  it->value_len = it->value != NULL ? value_size(it->value) : 0;
  it->entry_len = bytes_field_size(it->ns_len) + bytes_field_size(it->name_len) +
                  (it->value != NULL ? bytes_field_size(it->value_len) : 0);
}

static uint8_t *put_value(uint8_t *p, const uvw_value_t *v) {
  switch (v->kind) {
    case UVW_VALUE_NIL:
      *p++ = 1 << 3; /* nil = 1: true */
      *p++ = 1;
      return p;
    case UVW_VALUE_BOOL:
      *p++ = 2 << 3;
      *p++ = v->u.b ? 1 : 0;
      return p;
    case UVW_VALUE_INT:
      *p++ = 3 << 3;
      return p + uvw__pb_put_varint(p, zigzag(v->u.i));
    case UVW_VALUE_DOUBLE: {
      uint64_t bits;
      memcpy(&bits, &v->u.d, sizeof(bits));
      *p++ = 4 << 3 | UVW__PB_FIXED64;
      for (int k = 0; k < 8; k++) *p++ = (uint8_t)(bits >> (8 * k)); /* little-endian */
      return p;
    }
    default:
      return p + uvw__pb_put_bytes(p, v->kind == UVW_VALUE_STRING ? 5 : 6, v->data, v->len);
  }
}

static uint8_t *put_entry(uint8_t *p, const item_t *it) {
  p += uvw__pb_put_bytes(p, 1, it->var->ns, it->ns_len);
  p += uvw__pb_put_bytes(p, 2, it->var->name, it->name_len);
  if (it->value != NULL) {
    *p++ = 3 << 3 | UVW__PB_BYTES;
    p += uvw__pb_put_varint(p, it->value_len);
    p = put_value(p, it->value);
  }
  return p;
}

/* Bytes of the entries (field 2 of ChainManifest, one per item); measures
 * each item for put_entries. */
static size_t entries_size(item_t *items, size_t n) {
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    measure_entry(&items[i]);
    total += bytes_field_size(items[i].entry_len);
  }
  return total;
}

static void put_entries(uint8_t *p, const item_t *items, size_t n) {
  for (size_t i = 0; i < n; i++) {
    *p++ = 2 << 3 | UVW__PB_BYTES;
    p += uvw__pb_put_varint(p, items[i].entry_len);
    p = put_entry(p, &items[i]);
  }
}

/* The manifest: the chain id (field 1) first, as protobuf-c writes it,
 * then `elen` bytes of entries: copied from `entries`, or written from
 * items (measured by entries_size) when that is NULL. A memo of the
 * entries is left on `map` when it is not NULL. */
static int write_manifest(const uvw__chain_t *chain, unsigned flags, const uint8_t *entries, size_t elen,
                          const item_t *items, size_t n, uvw__map_t *map, uint64_t stamp, void **out,
                          size_t *len) {
  size_t head = flags & UVW__MANIFEST_NO_ID ? 0 : 34, total = head + elen;
  if (total > uvw_wire_max_size()) return uvw__wire_too_big("manifest", total);
  if (total == 0) return 0;
  uint8_t *buf = uvw__malloc(total);
  if (buf == NULL) return uvw__error_nomem("manifest");
  if (head) {
    char id[33];
    uvw__chain_id_hex(chain, id);
    buf[0] = 1 << 3 | UVW__PB_BYTES;
    buf[1] = 32;
    memcpy(buf + 2, id, 32);
  }
  if (entries != NULL)
    memcpy(buf + head, entries, elen);
  else
    put_entries(buf + head, items, n);
  *out = buf;
  *len = total;
  uvw__map_memo_t *memo = map ? uvw__malloc(sizeof(*memo) + elen) : NULL;
  if (memo != NULL) { /* out of memory: no memo, nothing else lost */
    memo->stamp = stamp;
    memo->len = elen;
    if (elen) memcpy(memo->bytes, buf + head, elen);
    uvw__map_set_memo(map, memo);
  }
  return 0;
}

int uvw__manifest_encode(uvw_context_t *ctx, unsigned flags, void **out, size_t *len) {
  if (out == NULL || len == NULL) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "manifest encode: out or len is NULL");
    return UVW_EINVAL;
  }
  *out = NULL;
  *len = 0;
  if (ctx == NULL) {
    uvw__thread_t *t = uvw__thread();
    ctx = t->current; /* never materialised: the empty unarmed context */
    if (ctx == NULL) return 0;
    int rc = uvw__guard_op(ctx->chain, t, "serialize", NULL);
    if (rc != 0) return rc;
  }
  /* Snapshots: the context may be changed by its owner while we work on an
   * explicitly given one; the map and chain records are immutable. */
  uvw__map_t *map;
  uvw__chain_t *chain;
  uvw__context_snapshot(ctx, &map, &chain);
  if (chain == NULL) {
    uvw__map_unref(map);
    return 0;
  }
  /* Pending resets interleave with the bindings by key: a manifest that
   * carries some is encoded in full. */
  int no_resets = (flags & UVW__MANIFEST_NO_RESETS) || chain->nresets == 0;
  uint64_t stamp = atomic_load(&uvw__var_policy_changes);
  const uvw__map_memo_t *memo = no_resets ? uvw__map_memo(map) : NULL;
  int rc;
  collect_t c = {0};
  if (memo != NULL && memo->stamp == stamp) {
    rc = write_manifest(chain, flags, memo->bytes, memo->len, NULL, 0, NULL, 0, out, len);
    goto done;
  }
  uvw__map_foreach(map, visit, &c);
  if (!(flags & UVW__MANIFEST_NO_RESETS))
    for (size_t i = 0; i < chain->nresets; i++) push(&c, chain->resets[i], NULL);
  if (c.nomem) {
    rc = uvw__error_nomem("manifest");
  } else {
    sort_items(c.items, c.n);
    /* The memo: only bytes that follow from the bindings alone (no opaque
     * value, whose codec may change; no reset, which sorts between them). */
    if (builtin_only(c.items, c.n))
      rc = write_manifest(chain, flags, NULL, entries_size(c.items, c.n), c.items, c.n, no_resets ? map : NULL,
                          stamp, out, len);
    else
      rc = pack_items(chain, c.items, c.n, flags, out, len);
  }
done:
  uvw__free(c.items);
  uvw__map_unref(map);
  uvw__chain_unref(chain);
  return rc;
}

int uvw_manifest_encode(uvw_context_t *ctx, void **out, size_t *len) {
  return uvw__manifest_encode(ctx, 0, out, len);
}
