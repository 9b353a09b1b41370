/*
 * multipart.h - multipart/form-data request bodies (RFC 7578, RFC 2046 §5.1),
 * parsed incrementally and pure.
 *
 * No I/O, no allocation, no globals: the caller owns struct multipart (its
 * size is fixed, whatever the body's size) and feeds the body's bytes as
 * they arrive. Each call to multipart_feed() reports one event and how many
 * input bytes it consumed; the caller calls again with the rest. A part's
 * body is handed out in pieces (MULTIPART_DATA) pointing into the caller's
 * input, or into the parser for the few bytes it held back while a possible
 * boundary was split between two calls: nothing is ever copied or buffered
 * but a part's header block (at most MULTIPART_MAX_HEAD bytes).
 *
 * Strictness: a boundary outside RFC 2046's alphabet, a part without
 * Content-Disposition: form-data and a name, a header line without a colon
 * or folded, a header block too long, a parameter value too long, control
 * characters in a value, bytes other than padding between a delimiter and
 * its CRLF, and a body that ends before the closing delimiter are errors.
 * A preamble before the first delimiter and an epilogue after the last are
 * ignored, as RFC 2046 says.
 */
#ifndef TRIREME_PROTO_MULTIPART_H
#define TRIREME_PROTO_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

#define MULTIPART_MAX_BOUNDARY 70   /* RFC 2046 */
#define MULTIPART_MAX_HEAD     2048 /* one part's header block, CRLFCRLF included */
#define MULTIPART_MAX_NAME     128  /* a form field's name, NUL excluded */
#define MULTIPART_MAX_FILENAME 255  /* a file name as the client sent it */
#define MULTIPART_MAX_CTYPE    127  /* a part's Content-Type */

enum multipart_event {
    MULTIPART_AGAIN = 0, /* every input byte consumed: feed more */
    MULTIPART_PART,      /* a part's headers: m->part is valid until the next PART */
    MULTIPART_DATA,      /* ev_data[0..ev_len) of the current part's body */
    MULTIPART_PART_END,  /* the current part's body is complete */
    MULTIPART_DONE,      /* closing delimiter seen; later bytes are epilogue */
    MULTIPART_ERROR,     /* m->error says why; the parser stays in error */
};

struct multipart_part {
    char name[MULTIPART_MAX_NAME + 1];
    char filename[MULTIPART_MAX_FILENAME + 1];
    char content_type[MULTIPART_MAX_CTYPE + 1];
    int has_filename; /* filename="" counts: a file input left empty */
};

struct multipart {
    /* "\r\n--" boundary: the delimiter searched for in bodies */
    char delim[4 + MULTIPART_MAX_BOUNDARY];
    size_t delim_len;
    size_t match; /* delimiter bytes matched at the end of the last input */
    int state;
    unsigned parts; /* parts whose headers were reported */
    char head[MULTIPART_MAX_HEAD];
    size_t head_len;
    struct multipart_part part;
    const char *ev_data; /* MULTIPART_DATA: the piece */
    size_t ev_len;
    const char *error; /* MULTIPART_ERROR: a static message naming what is wrong */
};

/* The boundary parameter of a Content-Type value ct[0..n) that must be
 * multipart/form-data. Copies it (unquoted) to out, NUL-terminated.
 * Returns its length, 0 when ct is not multipart/form-data at all, or -1
 * when it is but the boundary is missing or invalid. */
int multipart_boundary(const char *ct, size_t n, char *out, size_t cap);

/* Starts a parser for a body delimited by boundary[0..n) (as returned by
 * multipart_boundary: 1..MULTIPART_MAX_BOUNDARY valid characters). */
void multipart_init(struct multipart *m, const char *boundary, size_t n);

/* Parses in[0..n): returns one event and sets *consumed (<= n). May return
 * an event having consumed nothing (a held-back piece, or a PART_END); the
 * caller loops until MULTIPART_AGAIN with everything consumed. */
enum multipart_event multipart_feed(struct multipart *m, const char *in, size_t n,
                                    size_t *consumed);

/* At the end of the body: 0 when the closing delimiter was seen, else -1
 * with m->error set. */
int multipart_finish(struct multipart *m);

/* Whether s[0..n) may name a stored file part (or a job id beside it):
 * 1 to MULTIPART_MAX_NAME letters, digits, '.', '_' or '-', and not "." or
 * "..", so it needs no escaping in a URL or in a file path. */
bool multipart_name_ok(const char *s, size_t n);

#endif
