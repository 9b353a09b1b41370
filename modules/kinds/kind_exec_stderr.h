/*
 * kind_exec_stderr.h - what an exec program writes on stderr, in one-shot
 * and pool mode alike: each line goes to the log (a line longer than
 * EXEC_STDERR_LINE_MAX in pieces), and the last bytes are kept in a ring
 * for the error a failed job records.
 */
#ifndef TRIREME_MODULES_KINDS_KIND_EXEC_STDERR_H
#define TRIREME_MODULES_KINDS_KIND_EXEC_STDERR_H

#include <stddef.h>

#include "modules/kinds/kind_exec.h"

/* A line, cleaned to valid UTF-8, without its newline. */
typedef void (*exec_stderr_log_fn)(void *ctx, const char *line, size_t len);

struct exec_stderr {
    char line[EXEC_STDERR_LINE_MAX];
    size_t len;
    char *tail; /* ring of size bytes (0: none kept) */
    size_t size, tail_len, tail_pos;
};

void exec_stderr_init(struct exec_stderr *e, size_t tail_size);
void exec_stderr_free(struct exec_stderr *e);
/* Nothing taken yet (the next attempt, a restarted process). */
void exec_stderr_reset(struct exec_stderr *e);
void exec_stderr_take(struct exec_stderr *e, const char *b, size_t n, exec_stderr_log_fn log,
                      void *ctx);
/* The line begun and not ended, if any, to the log. */
void exec_stderr_flush(struct exec_stderr *e, exec_stderr_log_fn log, void *ctx);
/* The tail, oldest first, at most cap - 1 bytes starting on a character
 * boundary, cleaned, without a trailing newline; NUL-terminated. Returns
 * its length. */
size_t exec_stderr_tail(const struct exec_stderr *e, char *out, size_t cap);

#endif
