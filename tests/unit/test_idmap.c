/* The dispatch-id table (dispatch/link.c): emptying it is linear. Closing
 * a connection pops every pending dispatch; a pop that rescans from bucket
 * 0 made 65,536 of them quadratic (issue 11). */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "dispatch_int.h"

Test(idmap, popping_everything_visits_each_bucket_once) {
  enum { N = 65536 };
  uvw__idmap_t m;
  uvw__idmap_init(&m);
  uvw__idnode_t *nodes = calloc(N, sizeof(*nodes));
  for (size_t i = 0; i < N; i++) {
    nodes[i].id = i * 7919 + 1;
    cr_assert_eq(uvw__idmap_put(&m, &nodes[i]), 0);
  }
  size_t popped = 0, last_scan = 0;
  uvw__idnode_t *n;
  while ((n = uvw__idmap_pop(&m)) != NULL) {
    cr_assert_geq(m.scan, last_scan, "the scan only moves forward");
    last_scan = m.scan;
    popped++;
  }
  cr_assert_eq(popped, N);
  cr_assert_eq(m.count, 0);
  /* Reusable afterwards: a put below the cursor is found again. */
  cr_assert_eq(uvw__idmap_put(&m, &nodes[0]), 0);
  cr_assert_eq(uvw__idmap_pop(&m), &nodes[0]);
  uvw__idmap_free(&m);
  free(nodes);
}
