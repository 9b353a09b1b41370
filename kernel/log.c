/*
 * log.c - structured log lines (see log.h).
 */
#include "kernel/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Written once by log_setup() before threads start; read-only afterwards. */
static enum log_level min_level = LOG_INFO;
static bool as_json;

#define LOG_BUF_SIZE  (64 * 1024)
#define LOG_LINE_SIZE 4096

struct log_tls {
    bool buffered;
    size_t len;
    char buf[LOG_BUF_SIZE];
};
static __thread struct log_tls *tls;
static __thread struct log_tls tls_storage;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void log_setup(enum log_level level, bool json)
{
    min_level = level;
    as_json = json;
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (!strcasecmp(s, level_names[i]))
            return i;
    if (!strcasecmp(s, "warning"))
        return LOG_WARN;
    if (!strcasecmp(s, "off"))
        return LOG_OFF;
    return -1;
}

bool log_enabled(enum log_level level)
{
    return level >= min_level && level < LOG_OFF;
}

static void write_all(const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

void log_buffered(bool on)
{
    tls = &tls_storage;
    if (!on)
        log_flush();
    tls->buffered = on;
}

void log_flush(void)
{
    if (tls && tls->len) {
        write_all(tls->buf, tls->len);
        tls->len = 0;
    }
}

/*
 * A line is cut at LOG_LINE_SIZE, and a cut JSON line still parses: JSON
 * is written in whole pieces (a field's key, an escape sequence) and
 * LINE_RESERVE bytes are kept back for the closing quote and brace; once a
 * value has been cut (full), no further field is added.
 */
struct line {
    char *p;
    size_t n, cap;
    bool full;
};

#define LINE_RESERVE 2 /* '"' closing a cut value, '}' */

static void put(struct line *l, const char *s, size_t n)
{
    if (n > l->cap - l->n) {
        n = l->cap - l->n;
        l->full = true;
    }
    memcpy(l->p + l->n, s, n);
    l->n += n;
}

/* All of s or nothing. */
static bool put_whole(struct line *l, const char *s, size_t n)
{
    if (n > l->cap - l->n) {
        l->full = true;
        return false;
    }
    put(l, s, n);
    return true;
}

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

static void put_escaped(struct line *l, const char *s, size_t n, bool json)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n && !l->full; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put_whole(l, e, 2);
        } else if (c < 0x20 || c == 0x7f) {
            if (json) {
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                put_whole(l, e, 6);
            } else {
                char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
                put_whole(l, e, 4);
            }
        } else {
            put_whole(l, (const char *)&c, 1);
        }
    }
}

static void put_timestamp(struct line *l)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char b[40];
    int n =
        snprintf(b, sizeof(b), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    put(l, b, (size_t)n);
}

void log_event(enum log_level level, const char *msg, ...)
{
    char stack[LOG_LINE_SIZE];
    struct line l = {stack, 0, sizeof(stack) - 1 - LINE_RESERVE, false};
    if (as_json) {
        puts_(&l, "{\"ts\":\"");
        put_timestamp(&l);
        puts_(&l, "\",\"level\":\"");
        puts_(&l, level_names[level]);
        puts_(&l, "\",\"msg\":\"");
        put_escaped(&l, msg, strlen(msg), true);
        puts_(&l, "\"");
    } else {
        put_timestamp(&l);
        puts_(&l, " ");
        const char *up[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
        puts_(&l, up[level]);
        puts_(&l, " ");
        puts_(&l, msg);
    }
    va_list ap;
    va_start(ap, msg);
    const char *key;
    while (!l.full && (key = va_arg(ap, const char *))) {
        int type = va_arg(ap, int);
        char num[64];
        const char *s = NULL;
        size_t sn = 0;
        bool quote = true;
        switch (type) {
        case LOG_T_STR:
            s = va_arg(ap, const char *);
            if (!s)
                s = "";
            sn = strlen(s);
            break;
        case LOG_T_STRN:
            s = va_arg(ap, const char *);
            sn = (size_t)va_arg(ap, int);
            break;
        case LOG_T_INT:
            sn = (size_t)snprintf(num, sizeof(num), "%lld", va_arg(ap, long long));
            s = num;
            quote = false;
            break;
        case LOG_T_DBL:
            sn = (size_t)snprintf(num, sizeof(num), "%.3f", va_arg(ap, double));
            s = num;
            quote = false;
            break;
        case LOG_T_BOOL:
            s = va_arg(ap, int) ? "true" : "false";
            sn = strlen(s);
            quote = false;
            break;
        case LOG_T_JSON:
            s = va_arg(ap, const char *);
            sn = strlen(s);
            quote = !as_json;
            break;
        default:
            va_end(ap);
            goto done;
        }
        if (as_json) {
            /* A field goes in whole or not at all, but for a quoted value,
             * which may be cut (escape by escape) and is then closed from
             * the reserve. Keys are identifiers from the source. */
            char head[96];
            int hn = snprintf(head, sizeof(head), ",\"%s\":%s", key, quote ? "\"" : "");
            if (hn < 0 || (size_t)hn >= sizeof(head) ||
                (size_t)hn + (quote ? 0 : sn) > l.cap - l.n) {
                l.full = true;
                break;
            }
            put(&l, head, (size_t)hn);
            if (!quote) {
                put(&l, s, sn);
                continue;
            }
            put_escaped(&l, s, sn, true);
            if (l.n < l.cap) {
                put(&l, "\"", 1);
            } else {
                l.p[l.n++] = '"';
                l.full = true;
            }
        } else {
            puts_(&l, " ");
            puts_(&l, key);
            puts_(&l, "=");
            bool needq = quote && (sn == 0 || memchr(s, ' ', sn) || memchr(s, '"', sn));
            if (needq)
                puts_(&l, "\"");
            put_escaped(&l, s, sn, false);
            if (needq)
                puts_(&l, "\"");
        }
    }
    va_end(ap);
done:
    l.cap = sizeof(stack) - 1; /* the reserve, for the closing brace */
    if (as_json)
        puts_(&l, "}");
    l.p[l.n++] = '\n'; /* cap left one byte for this */
    if (tls && tls->buffered) {
        if (tls->len + l.n > sizeof(tls->buf))
            log_flush();
        memcpy(tls->buf + tls->len, l.p, l.n);
        tls->len += l.n;
        if (level >= LOG_WARN)
            log_flush();
        return;
    }
    write_all(l.p, l.n);
}
