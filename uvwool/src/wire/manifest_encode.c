/* ChainManifest encoding (docs/semantics.md §7): one entry per bound variable that
 * may cross the wire, one value-less entry per pending reset, sorted by
 * (namespace, name) bytewise so equal states give identical bytes.
 *
 * A context that did not change since its last dispatch is the common case
 * (docs/wire.md, "What an unchanged context costs"): the entries of a map
 * are kept with it as a memo (map.h), so encoding it again is a copy. */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "context.h"
#include "error.h"
#include "var.h"
#include "wire_int.h"

typedef struct {
  uvw_var_t *var;
  uvw_value_t *value; /* borrowed from the map snapshot; NULL: reset */
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
static int by_key(const void *a, const void *b) {
  const uvw_var_t *x = ((const item_t *)a)->var, *y = ((const item_t *)b)->var;
  int c = strcmp(x->ns, y->ns);
  return c ? c : strcmp(x->name, y->name);
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

/* *plain: set to 1 when every value is of a built-in kind and nothing was
 * dropped, i.e. the bytes follow from the bindings alone. */
static int pack_items(const uvw__chain_t *chain, item_t *items, size_t n, unsigned flags, void **out,
                      size_t *len, int *plain) {
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
  *plain = 1;
  for (size_t i = 0; i < n; i++) {
    Uvwool__Entry *e = &s.entries[k];
    if (items[i].value != NULL && items[i].value->kind == UVW_VALUE_OPAQUE) *plain = 0;
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
        *plain = 0;
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

/* The manifest from the entries' bytes: the id (field 1) first, as the
 * packer writes it, then the entries (field 2). */
static int compose(const uvw__chain_t *chain, unsigned flags, const uint8_t *entries, size_t elen, void **out,
                   size_t *len) {
  size_t idlen = flags & UVW__MANIFEST_NO_ID ? 0 : 34;
  size_t n = idlen + elen;
  if (n > uvw_wire_max_size()) return uvw__wire_too_big("manifest", n);
  if (n == 0) return 0;
  uint8_t *buf = uvw__malloc(n);
  if (buf == NULL) return uvw__error_nomem("manifest");
  if (idlen) {
    char id[33];
    uvw__chain_id_hex(chain, id);
    buf[0] = 0x0a; /* field 1, length-delimited */
    buf[1] = 32;
    memcpy(buf + 2, id, 32);
  }
  if (elen) memcpy(buf + idlen, entries, elen);
  *out = buf;
  *len = n;
  return 0;
}

/* Encode the bindings alone, keep them as the map's memo when they follow
 * from it alone, and compose the manifest. */
static int encode_memo(uvw__map_t *map, const uvw__chain_t *chain, item_t *items, size_t n, unsigned flags,
                       uint64_t stamp, void **out, size_t *len) {
  void *entries;
  size_t elen;
  int plain;
  int rc = pack_items(chain, items, n, flags | UVW__MANIFEST_NO_ID, &entries, &elen, &plain);
  if (rc != 0) return rc;
  rc = compose(chain, flags, entries, elen, out, len);
  uvw__map_memo_t *memo = rc == 0 && plain && map ? uvw__malloc(sizeof(*memo) + elen) : NULL;
  if (memo != NULL) { /* out of memory: no memo, nothing else lost */
    memo->stamp = stamp;
    memo->len = elen;
    if (elen) memcpy(memo->bytes, entries, elen);
    uvw__map_set_memo(map, memo);
  }
  uvw__free(entries);
  return rc;
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
    rc = compose(chain, flags, memo->bytes, memo->len, out, len);
    goto done;
  }
  uvw__map_foreach(map, visit, &c);
  if (!(flags & UVW__MANIFEST_NO_RESETS))
    for (size_t i = 0; i < chain->nresets; i++) push(&c, chain->resets[i], NULL);
  if (c.nomem) {
    rc = uvw__error_nomem("manifest");
  } else {
    if (c.n > 1) qsort(c.items, c.n, sizeof(*c.items), by_key);
    int plain;
    rc = no_resets ? encode_memo(map, chain, c.items, c.n, flags, stamp, out, len)
                   : pack_items(chain, c.items, c.n, flags, out, len, &plain);
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
