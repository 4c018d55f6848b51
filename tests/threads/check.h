/* A minimal assertion counter for the plain-main() thread tests (Criterion
 * cannot start under ThreadSanitizer). End main with CHECK_SUMMARY(). */
#ifndef UVWOOL_THREADS_CHECK_H
#define UVWOOL_THREADS_CHECK_H

#include <stdio.h>

static int check_passed, check_failed;

#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (cond) {                                            \
      check_passed++;                                      \
    } else {                                               \
      check_failed++;                                      \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fputc('\n', stderr);                                 \
    }                                                      \
  } while (0)

/* Prints "N passed, N failed" and yields main's exit status. */
#define CHECK_SUMMARY() (printf("%d passed, %d failed\n", check_passed, check_failed), check_failed != 0)

#endif
