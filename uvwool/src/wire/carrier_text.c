/* The text carrier: a manifest as base64url (RFC 4648 section 5) without
 * padding, safe in an HTTP header value, gRPC ASCII metadata, a URL or an
 * environment variable. Decoding tolerates '=' padding and nothing else:
 * whitespace or a foreign character is malformed input, not something to
 * guess around. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "wire_int.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *uvw__b64url_encode(const void *data, size_t len) {
  const uint8_t *p = data;
  size_t n = len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
  char *out = uvw__malloc(n + 1);
  if (out == NULL) return NULL;
  size_t o = 0, i = 0;
  for (; i + 3 <= len; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    out[o++] = alphabet[v >> 18];
    out[o++] = alphabet[(v >> 12) & 63];
    out[o++] = alphabet[(v >> 6) & 63];
    out[o++] = alphabet[v & 63];
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)p[i] << 16;
    out[o++] = alphabet[v >> 18];
    out[o++] = alphabet[(v >> 12) & 63];
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
    out[o++] = alphabet[v >> 18];
    out[o++] = alphabet[(v >> 12) & 63];
    out[o++] = alphabet[(v >> 6) & 63];
  }
  out[o] = '\0';
  return out;
}

static int sextet(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

static int bad_text(const char *reason, size_t at) {
  uvw_error_t *e = uvw__error_set(UVW_EMALFORMED, UVW_KIND_SERIALIZATION_ERROR, "malformed manifest text: %s", reason);
  uvw__error_field(e, "what", "manifest text");
  uvw__error_field(e, "reason", "%s", reason);
  uvw__error_field(e, "offset", "%zu", at);
  return UVW_EMALFORMED;
}

int uvw__b64url_decode(const char *text, size_t len, uint8_t **out, size_t *outlen) {
  *out = NULL;
  *outlen = 0;
  size_t n = len;
  while (n > 0 && text[n - 1] == '=' && len - n < 2) n--;
  if (n % 4 == 1) return bad_text("length is not a possible base64url length", n);
  size_t cap = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
  uint8_t *buf = uvw__malloc(cap ? cap : 1);
  if (buf == NULL) return uvw__error_nomem("manifest text");
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int s = sextet((unsigned char)text[i]);
    if (s < 0) {
      uvw__free(buf);
      return bad_text("character outside the base64url alphabet", i);
    }
    acc = acc << 6 | (uint32_t)s;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      buf[o++] = (uint8_t)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  *out = buf;
  *outlen = o;
  return 0;
}

int uvw_text_encode(uvw_context_t *ctx, char **out) {
  if (out == NULL) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "uvw_text_encode: out is NULL");
    return UVW_EINVAL;
  }
  *out = NULL;
  void *bytes;
  size_t len;
  int rc = uvw__manifest_encode(ctx, 0, &bytes, &len);
  if (rc != 0) return rc;
  char *text = uvw__b64url_encode(bytes, len);
  uvw__free(bytes);
  if (text == NULL) return uvw__error_nomem("manifest text");
  *out = text;
  return 0;
}

int uvw_text_decode(const char *text, size_t len, uvw_manifest_t **out) {
  if (out == NULL || (text == NULL && len != 0)) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "uvw_text_decode: NULL argument");
    return UVW_EINVAL;
  }
  *out = NULL;
  /* Checked on the text so a huge header is refused before any work. */
  if (len / 4 * 3 > uvw_wire_max_size()) {
    uvw_error_t *e = uvw__error_set(UVW_ETOOBIG, UVW_KIND_SERIALIZATION_ERROR,
                                    "manifest text of %zu characters is over the wire size limit of %zu bytes",
                                    len, uvw_wire_max_size());
    uvw__error_field(e, "size", "%zu", len);
    uvw__error_field(e, "limit", "%zu", uvw_wire_max_size());
    return UVW_ETOOBIG;
  }
  uint8_t *bytes;
  size_t n;
  int rc = uvw__b64url_decode(text, len, &bytes, &n);
  if (rc != 0) return rc;
  rc = uvw_manifest_decode(bytes, n, out);
  uvw__free(bytes);
  return rc;
}
