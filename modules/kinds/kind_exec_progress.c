/*
 * kind_exec_progress.c - one line an exec program wrote to its progress
 * descriptor, as percent and step. Two forms, so a shell script can
 * `echo 45 Processing chunk 5/10 >&$TRIREME_PROGRESS_FD` and a program can
 * write JSON: {"percent": 45, "step": "Processing chunk 5/10"}. And the
 * cleaning of any text a program hands over.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "modules/kinds/kind_exec.h"

static void copy_step(char *step, size_t cap, const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(step, s, n);
    step[n] = 0;
}

static int parse_json(const char *line, size_t len, int *percent, char *step, size_t cap)
{
    json_error_t je;
    json_t *o = json_loadb(line, len, 0, &je);
    json_t *p = json_object_get(o, "percent"), *st = json_object_get(o, "step");
    double v = json_is_integer(p) ? (double)json_integer_value(p)
               : json_is_real(p)  ? json_real_value(p)
                                  : -1;
    int rc = -1;
    if (json_is_object(o) && v >= 0 && v <= 100 &&
        (!st || json_is_string(st) || json_is_null(st))) {
        *percent = (int)v;
        if (json_is_string(st))
            copy_step(step, cap, json_string_value(st), json_string_length(st));
        else
            step[0] = 0;
        rc = 0;
    }
    json_decref(o);
    return rc;
}

int exec_progress_parse(const char *line, size_t len, int *percent, char *step, size_t cap)
{
    if (!cap)
        return -1;
    step[0] = 0;
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
        len--;
    size_t i = 0;
    while (i < len && line[i] == ' ')
        i++;
    if (i < len && line[i] == '{')
        return parse_json(line + i, len - i, percent, step, cap);
    int v = 0;
    size_t digits = 0;
    for (; i < len && line[i] >= '0' && line[i] <= '9' && digits < 4; i++, digits++)
        v = v * 10 + (line[i] - '0');
    if (!digits || v > 100)
        return -1;
    if (i < len && line[i] == '.') /* a fraction is allowed and dropped */
        for (i++; i < len && line[i] >= '0' && line[i] <= '9'; i++)
            ;
    if (i < len && line[i] == '%')
        i++;
    if (i < len && line[i] != ' ' && line[i] != '\t')
        return -1;
    *percent = v;
    copy_step(step, cap, line + i, len - i);
    return 0;
}

void exec_utf8_clean(char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = len && i + len <= n && c != 0;
        for (size_t k = 1; ok && k < len; k++)
            ok = ((unsigned char)s[i + k] >> 6) == 2;
        if (ok && len == 2)
            ok = c >= 0xc2;
        if (ok && len == 3) {
            unsigned char d = (unsigned char)s[i + 1];
            ok = !(c == 0xe0 && d < 0xa0) && !(c == 0xed && d >= 0xa0);
        }
        if (ok && len == 4) {
            unsigned char d = (unsigned char)s[i + 1];
            ok = c <= 0xf4 && !(c == 0xf0 && d < 0x90) && !(c == 0xf4 && d >= 0x90);
        }
        if (!ok) {
            s[i++] = '?';
            continue;
        }
        i += len;
    }
}
