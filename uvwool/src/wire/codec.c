/* Value codecs: the language-neutral encoding of built-in kinds and the
 * registry of named codecs for opaque values.
 *
 * The registry is small and read on every opaque encode/decode; a mutex is
 * enough (codecs are registered at start-up, lookups copy the entry out and
 * call the codec outside the lock so a codec may itself use uvwool). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "value.h"
#include "wire_int.h"

typedef struct codec_s {
  char *name;
  uvw_codec_encode_cb encode;
  uvw_codec_decode_cb decode;
  void *arg;
  struct codec_s *next;
} codec_t;

static pthread_mutex_t codec_lock = PTHREAD_MUTEX_INITIALIZER;
static codec_t *codecs;

static codec_t **find_locked(const char *name) {
  codec_t **p = &codecs;
  while (*p && strcmp((*p)->name, name) != 0) p = &(*p)->next;
  return p;
}

int uvw_codec_register(const char *type_name, uvw_codec_encode_cb encode, uvw_codec_decode_cb decode,
                       void *arg) {
  if (type_name == NULL || type_name[0] == '\0' || (encode == NULL && decode == NULL)) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR,
                   "uvw_codec_register: a codec needs a non-empty type name and an encode or decode function");
    return UVW_EINVAL;
  }
  codec_t *c = uvw__calloc(1, sizeof(*c));
  char *name = uvw__strndup(type_name, strlen(type_name));
  if (c == NULL || name == NULL) {
    uvw__free(c);
    uvw__free(name);
    return uvw__error_nomem("codec");
  }
  pthread_mutex_lock(&codec_lock);
  codec_t **p = find_locked(type_name);
  if (*p != NULL) {
    /* Replace in place; the old entry is freed, its name reused. */
    (*p)->encode = encode;
    (*p)->decode = decode;
    (*p)->arg = arg;
    pthread_mutex_unlock(&codec_lock);
    uvw__free(c);
    uvw__free(name);
    return 0;
  }
  c->name = name;
  c->encode = encode;
  c->decode = decode;
  c->arg = arg;
  c->next = codecs;
  codecs = c;
  pthread_mutex_unlock(&codec_lock);
  return 0;
}

int uvw_codec_unregister(const char *type_name) {
  codec_t *gone = NULL;
  if (type_name != NULL) {
    pthread_mutex_lock(&codec_lock);
    codec_t **p = find_locked(type_name);
    if ((gone = *p) != NULL) *p = gone->next;
    pthread_mutex_unlock(&codec_lock);
  }
  if (gone == NULL) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "no codec registered for type '%s'",
                   type_name ? type_name : "(null)");
    return UVW_EINVAL;
  }
  uvw__free(gone->name);
  uvw__free(gone);
  return 0;
}

static int lookup(const char *name, codec_t *out) {
  pthread_mutex_lock(&codec_lock);
  codec_t *c = *find_locked(name);
  if (c) *out = *c;
  pthread_mutex_unlock(&codec_lock);
  return c != NULL;
}

/* ---- built-in kinds ------------------------------------------------------------ */

int uvw__value_to_pb(const uvw_value_t *v, Uvwool__Value *pb, Uvwool__Opaque *opaque, uvw_value_t **hold,
                     char *why, size_t whylen) {
  *hold = NULL;
  switch (v->kind) {
    case UVW_VALUE_NIL:
      pb->kind_case = UVWOOL__VALUE__KIND_NIL;
      pb->nil = 1;
      return 0;
    case UVW_VALUE_BOOL:
      pb->kind_case = UVWOOL__VALUE__KIND_BOOL_VALUE;
      pb->bool_value = v->u.b ? 1 : 0;
      return 0;
    case UVW_VALUE_INT:
      pb->kind_case = UVWOOL__VALUE__KIND_INT_VALUE;
      pb->int_value = v->u.i;
      return 0;
    case UVW_VALUE_DOUBLE:
      pb->kind_case = UVWOOL__VALUE__KIND_DOUBLE_VALUE;
      pb->double_value = v->u.d;
      return 0;
    case UVW_VALUE_STRING:
      pb->kind_case = UVWOOL__VALUE__KIND_STRING_VALUE;
      pb->string_value.len = v->len;
      pb->string_value.data = (uint8_t *)v->data;
      return 0;
    case UVW_VALUE_BYTES:
      pb->kind_case = UVWOOL__VALUE__KIND_BYTES_VALUE;
      pb->bytes_value.len = v->len;
      pb->bytes_value.data = (uint8_t *)v->data;
      return 0;
    case UVW_VALUE_OPAQUE: {
      const char *type = v->u.opaque.ops->type_name;
      codec_t c;
      if (type == NULL || type[0] == '\0') {
        snprintf(why, whylen, "opaque value has no type name, so no codec can encode it");
        return -1;
      }
      if (!lookup(type, &c) || c.encode == NULL) {
        snprintf(why, whylen, "no codec registered to encode opaque type '%s'", type);
        return -1;
      }
      uvw_value_t *payload = NULL;
      if (c.encode(v, c.arg, &payload) != 0 || payload == NULL ||
          (payload->kind != UVW_VALUE_BYTES && payload->kind != UVW_VALUE_STRING)) {
        uvw__value_unref(payload);
        snprintf(why, whylen, "codec '%s' failed to encode the value", type);
        return -1;
      }
      uvwool__opaque__init(opaque);
      opaque->codec = (char *)type;
      opaque->has_data = 1;
      opaque->data.len = payload->len;
      opaque->data.data = (uint8_t *)payload->data;
      pb->kind_case = UVWOOL__VALUE__KIND_OPAQUE;
      pb->opaque = opaque;
      *hold = payload;
      return 0;
    }
    default:
      snprintf(why, whylen, "a sentinel cannot be encoded");
      return -1;
  }
}

static int nomem_value(uvw_value_t **out) {
  *out = NULL;
  return uvw__error_nomem("decoded value");
}

int uvw__value_from_pb(const Uvwool__Value *pb, uvw_value_t **out, char *why, size_t whylen) {
  uvw_value_t *v = NULL;
  *out = NULL;
  switch (pb->kind_case) {
    case UVWOOL__VALUE__KIND_NIL:
      *out = uvw_value_nil();
      return 0;
    case UVWOOL__VALUE__KIND_BOOL_VALUE:
      *out = uvw_value_bool(pb->bool_value);
      return 0;
    case UVWOOL__VALUE__KIND_INT_VALUE:
      v = uvw_value_int(pb->int_value);
      break;
    case UVWOOL__VALUE__KIND_DOUBLE_VALUE:
      v = uvw_value_double(pb->double_value);
      break;
    case UVWOOL__VALUE__KIND_STRING_VALUE:
      v = uvw_value_string((const char *)pb->string_value.data, pb->string_value.len);
      break;
    case UVWOOL__VALUE__KIND_BYTES_VALUE:
      v = uvw_value_bytes(pb->bytes_value.data, pb->bytes_value.len);
      break;
    case UVWOOL__VALUE__KIND_OPAQUE: {
      const Uvwool__Opaque *o = pb->opaque;
      codec_t c;
      if (o == NULL || o->codec == NULL || o->codec[0] == '\0') {
        snprintf(why, whylen, "opaque value without a codec name");
        return -1;
      }
      if (!lookup(o->codec, &c) || c.decode == NULL) {
        snprintf(why, whylen, "no codec registered to decode opaque type '%.64s'", o->codec);
        return -1;
      }
      static const uint8_t none[1] = {0};
      if (c.decode(o->has_data && o->data.data ? o->data.data : none, o->has_data ? o->data.len : 0, c.arg, &v) !=
              0 ||
          v == NULL || uvw__value_is_sentinel(v)) {
        if (v) uvw__value_unref(v);
        snprintf(why, whylen, "codec '%.64s' failed to decode the value", o->codec);
        return -1;
      }
      *out = v;
      return 0;
    }
    default:
      snprintf(why, whylen, "value has no kind set (unknown or missing oneof member)");
      return -1;
  }
  if (v == NULL) return nomem_value(out);
  *out = v;
  return 0;
}
