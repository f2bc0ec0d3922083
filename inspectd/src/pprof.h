/* pprof.h: an encoder of pprof profiles (google/pprof proto/profile.proto, gzipped), the
 * format `go tool pprof` reads, for GET /v1/heaps/{heap}/pprof/heap. Self-contained: its
 * own protobuf writer and its own gzip (DEFLATE with fixed-Huffman or stored blocks).
 *
 * A profile is built by one thread (no locking inside; distinct profiles are independent)
 * and encoded once or more: declare the sample types, add samples, encode. Every string is
 * copied, so nothing the caller passes needs to outlive the call. Memory comes from
 * malloc/realloc/free; every call that can fail returns 0 or a negative RCGC_E* code
 * (RCGC_EINVAL, RCGC_ENOMEM, RCGC_EBUSY) and on error changes nothing.
 *
 * What the profile holds:
 *  - string_table[0] is "" and every string is stored once;
 *  - one Mapping (id 1, has_functions, has_filenames and has_line_numbers set, no
 *    addresses), which every Location references, so that pprof treats the profile as
 *    symbolized and never tries to symbolize it;
 *  - one Location per distinct frame (function name, file, line), ids 1, 2, ... in order of
 *    first use, each with exactly one Line;
 *  - one Function per distinct (name, file), ids 1, 2, ... in order of first use, with
 *    system_name = name.
 *
 * Naming frames. pprof shows Function.name (-top, -tree, flame graphs) and the file and
 * line only with -lines or -list. A frame that names its function keeps that name. A frame
 * without one but with a file (the common case in rcgc: __FILE__ and __LINE__ of an
 * allocation macro) is named "file:line" (exactly as given, e.g. "src/parse.c:123"),
 * so that `pprof -top` tells two allocation sites of one file apart; its Function's
 * filename is the file and its Line the line. A frame with neither is "<unknown>". */
#ifndef RCGC_INSPECT_PPROF_H
#define RCGC_INSPECT_PPROF_H

#include <stddef.h>
#include <stdint.h>

/* A profile being built (opaque). */
typedef struct rcgc__pprof rcgc__pprof;

/* One stack frame. function or file may be NULL (see "Naming frames" above); line 0 means
 * unknown. */
typedef struct rcgc__pprof_frame {
    const char *function;
    const char *file;
    int64_t line;
} rcgc__pprof_frame;

/* One sample label: key = str when str is not NULL, else key = num, in num_unit (NULL:
 * none, e.g. "bytes"). */
typedef struct rcgc__pprof_label {
    const char *key;
    const char *str;
    int64_t num;
    const char *num_unit;
} rcgc__pprof_label;

/* Returns: an empty profile (no sample type, period 0, time 0), or NULL when out of
 * memory. Ownership: new; free it with rcgc__pprof_free. */
rcgc__pprof *rcgc__pprof_new(void);
/* Frees p and everything it holds. NULL is accepted. */
void rcgc__pprof_free(rcgc__pprof *p);

/* Appends a sample type (e.g. "inuse_objects"/"count", then "inuse_space"/"bytes"): each
 * sample then carries one value per declared type, in declaration order.
 * Returns: 0. Errors: RCGC_EINVAL (NULL argument), RCGC_EBUSY (a sample was already
 * added), RCGC_ENOMEM. */
int rcgc__pprof_sample_type(rcgc__pprof *p, const char *type, const char *unit);
/* Makes sample type number index (0-based, in declaration order) the one pprof shows by
 * default (Profile.default_sample_type; without this call pprof uses the last one).
 * Returns: 0. Errors: RCGC_EINVAL (NULL p, index not declared yet). */
int rcgc__pprof_default_sample_type(rcgc__pprof *p, size_t index);
/* Sets the period type (e.g. "space"/"bytes") and the period: the sampling interval in
 * those units, 0 when every event is recorded (exact counts). Unlike the first sketch of
 * this API it returns int: interning the two strings can fail.
 * Returns: 0. Errors: RCGC_EINVAL (NULL argument), RCGC_ENOMEM. */
int rcgc__pprof_period(rcgc__pprof *p, const char *type, const char *unit, int64_t period);
/* Sets when the profile was taken (nanoseconds since the Unix epoch) and over how long
 * (0: a snapshot). NULL p is ignored. */
void rcgc__pprof_time(rcgc__pprof *p, int64_t time_nanos, int64_t duration_nanos);
/* Appends a free-form comment (shown by pprof -comments).
 * Returns: 0. Errors: RCGC_EINVAL (NULL argument), RCGC_ENOMEM. */
int rcgc__pprof_comment(rcgc__pprof *p, const char *text);

/* Adds one sample: frames[0] is the innermost frame (the allocation site), frames[n-1]
 * the outermost; values holds one value per declared sample type (nvalues must equal
 * their number, at least 1). nframes may be 0 (pprof shows such a sample as an empty
 * stack). Samples with the same stack are not merged: pprof sums them.
 * Returns: 0. Errors: RCGC_EINVAL (NULL p, NULL frames with nframes > 0, NULL values,
 * nvalues not the number of sample types, more than 2^31 strings, functions or
 * locations), RCGC_ENOMEM. */
int rcgc__pprof_add(rcgc__pprof *p, const rcgc__pprof_frame *frames, size_t nframes,
                    const int64_t *values, size_t nvalues);
/* rcgc__pprof_add with labels (e.g. {"type", "Node"} or {"bytes", NULL, 48, "bytes"}).
 * Errors: as rcgc__pprof_add, and RCGC_EINVAL for a NULL labels with nlabels > 0 or a
 * label without a key. */
int rcgc__pprof_add_labeled(rcgc__pprof *p, const rcgc__pprof_frame *frames, size_t nframes,
                            const int64_t *values, size_t nvalues,
                            const rcgc__pprof_label *labels, size_t nlabels);

/* Serializes the profile (a perftools.profiles.Profile message) and gzips it. p is left
 * as it was: more samples may be added and the profile encoded again.
 * Returns: 0; *out (malloc'd, free() it) and *len hold the .pb.gz bytes. Errors:
 * RCGC_EINVAL (NULL argument, no sample type declared), RCGC_ENOMEM; *out and *len are
 * then untouched. */
int rcgc__pprof_encode(rcgc__pprof *p, unsigned char **out, size_t *len);

/* Gzips n bytes of in (RFC 1952: one member, no name, MTIME 0, OS 255 "unknown") with
 * DEFLATE (RFC 1951): per block of at most 65,535 input bytes, fixed-Huffman codes over an
 * LZ77 parse (32 KiB window, hash chains, one step of lazy matching) or, when that would
 * be larger, a stored block, so the output never exceeds n + 6 * (n / 65535 + 1) + 19
 * bytes. in may be NULL when n is 0. No dynamic-Huffman blocks: zlib -6 writes profiles
 * some 10-15% smaller.
 * Returns: 0; *out (malloc'd, free() it) and *len hold the gzip member. Errors:
 * RCGC_EINVAL (NULL out or len, NULL in with n > 0), RCGC_ENOMEM. */
int rcgc__pprof_gzip(const unsigned char *in, size_t n, unsigned char **out, size_t *len);

#endif /* RCGC_INSPECT_PPROF_H */
