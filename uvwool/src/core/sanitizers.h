#ifndef UVWOOL_CORE_SANITIZERS_H
#define UVWOOL_CORE_SANITIZERS_H

/* Which sanitizer this file is built under, for code that must differ:
 * GCC says so with __SANITIZE_*__, clang only through __has_feature.
 * UVW__TSAN: ThreadSanitizer; UVW__SANITIZED: any of them. */
#if defined(__SANITIZE_THREAD__)
#define UVW__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UVW__TSAN 1
#endif
#endif

#if defined(UVW__TSAN) || defined(__SANITIZE_ADDRESS__)
#define UVW__SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define UVW__SANITIZED 1
#endif
#endif

#endif
