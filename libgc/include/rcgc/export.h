/* rcgc/export.h: the one export macro of librcgc.
 *
 * Everything else in the library is built with hidden visibility; only declarations
 * marked RCGC_API are part of the ABI. */
#ifndef RCGC_EXPORT_H
#define RCGC_EXPORT_H

#if defined(_WIN32)
#if defined(RCGC_BUILDING_SHARED) && defined(RCGC_USING_SHARED)
#error "define at most one of RCGC_BUILDING_SHARED and RCGC_USING_SHARED"
#elif defined(RCGC_BUILDING_SHARED)
#define RCGC_API __declspec(dllexport)
#elif defined(RCGC_USING_SHARED)
#define RCGC_API __declspec(dllimport)
#else
#define RCGC_API
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define RCGC_API __attribute__((visibility("default")))
#else
#define RCGC_API
#endif

#if defined(__GNUC__) || defined(__clang__)
#define RCGC_NODISCARD __attribute__((warn_unused_result))
#define RCGC_LIKELY(x) __builtin_expect(!!(x), 1)
#define RCGC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define RCGC_NODISCARD
#define RCGC_LIKELY(x) (x)
#define RCGC_UNLIKELY(x) (x)
#endif

#endif /* RCGC_EXPORT_H */
