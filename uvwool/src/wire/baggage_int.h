/* Shared by the W3C baggage carrier's encoder and decoder. */
#ifndef UVW_WIRE_BAGGAGE_INT_H
#define UVW_WIRE_BAGGAGE_INT_H

#include <stddef.h>

#include "uvwool/context.h"

/* OpenTelemetry's limits (BAGGAGE_MAX_NAME_VALUE_PAIRS,
 * BAGGAGE_MAX_PER_NAME_VALUE_PAIRS, BAGGAGE_MAX_TOTAL_LENGTH), applied the
 * same way on both sides so a header uvwool accepted is re-emitted whole and
 * an OTel hop and a uvwool hop read the same members from the same header.
 * A member's size counts everything between its commas (properties and
 * whitespace included); the total counts accepted members and their commas. */
#define UVW__BAGGAGE_MAX_MEMBERS 180
#define UVW__BAGGAGE_MAX_MEMBER 4096
#define UVW__BAGGAGE_MAX_BYTES 8192
/* A decoded key is split into (namespace, name) at each of its first dots
 * in turn until a declared variable matches: bounded so a key of dots
 * cannot cost thousands of registry lookups. */
#define UVW__BAGGAGE_MAX_SPLITS 16

/* The variable holding other systems' members ("uvwool", "baggage"): a
 * string of members joined by ',', each as received (properties kept).
 * Declared once; its policy lacks UVW_PROPAGATE_BAGGAGE (it is rendered
 * member by member, not as a member of its own). */
uvw_var_t *uvw__baggage_var(void);

/* A small growable string; nomem sticks. */
typedef struct {
  char *s;
  size_t n, cap;
  int nomem;
} uvw__sbuf_t;
void uvw__sbuf_put(uvw__sbuf_t *b, const char *s, size_t n);

/* Non-zero when s[0..n) is well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing past U+10FFFF): what decodeURIComponent accepts. */
int uvw__utf8_valid(const char *s, size_t n);
/* Percent-decode s[0..n) into a new NUL-terminated buffer. Returns 1, 0 for
 * a bad escape, invalid UTF-8 or (allow_nul 0) a NUL byte, -1 out of memory. */
int uvw__pct_decode(const char *s, size_t n, int allow_nul, char **out, size_t *outlen);

#endif
