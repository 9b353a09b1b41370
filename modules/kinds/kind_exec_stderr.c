/*
 * kind_exec_stderr.c - an exec program's stderr: lines to the log, the
 * last bytes kept for the error; see kind_exec_stderr.h.
 */
#include "modules/kinds/kind_exec_stderr.h"

#include <stdlib.h>
#include <string.h>

#include "kernel/xalloc.h"

void exec_stderr_init(struct exec_stderr *e, size_t tail_size)
{
    e->size = tail_size;
    e->tail = xmalloc(tail_size ? tail_size : 1);
    exec_stderr_reset(e);
}

void exec_stderr_free(struct exec_stderr *e)
{
    free(e->tail);
    e->tail = NULL;
}

void exec_stderr_reset(struct exec_stderr *e)
{
    e->len = e->tail_len = e->tail_pos = 0;
}

void exec_stderr_flush(struct exec_stderr *e, exec_stderr_log_fn log, void *ctx)
{
    if (!e->len)
        return;
    exec_utf8_clean(e->line, e->len);
    log(ctx, e->line, e->len);
    e->len = 0;
}

void exec_stderr_take(struct exec_stderr *e, const char *b, size_t n, exec_stderr_log_fn log,
                      void *ctx)
{
    for (size_t i = 0; i < n; i++) {
        if (e->size) {
            e->tail[e->tail_pos] = b[i];
            e->tail_pos = (e->tail_pos + 1) % e->size;
            if (e->tail_len < e->size)
                e->tail_len++;
        }
        if (b[i] == '\n') {
            exec_stderr_flush(e, log, ctx);
            continue;
        }
        e->line[e->len++] = b[i];
        if (e->len == sizeof(e->line))
            exec_stderr_flush(e, log, ctx);
    }
}

size_t exec_stderr_tail(const struct exec_stderr *e, char *out, size_t cap)
{
    size_t n = e->tail_len < cap - 1 ? e->tail_len : cap - 1;
    size_t start = e->tail_len < e->size ? 0 : e->tail_pos; /* full ring: oldest at pos */
    for (size_t i = 0; i < n; i++)
        out[i] = e->tail[(start + (e->tail_len - n) + i) % (e->size ? e->size : 1)];
    size_t skip = 0; /* start on a character boundary */
    while (skip < n && skip < 3 && ((unsigned char)out[skip] >> 6) == 2)
        skip++;
    memmove(out, out + skip, n - skip);
    n -= skip;
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        n--;
    out[n] = 0;
    exec_utf8_clean(out, n);
    return n;
}
