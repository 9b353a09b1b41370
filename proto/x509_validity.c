/*
 * x509_validity.c - a DER walk to the validity period; see x509_validity.h.
 *
 * Only the few elements before validity are stepped over (version, serial,
 * signature algorithm, issuer); nothing is interpreted but the two times.
 */
#include "proto/x509_validity.h"

#include <stdbool.h>

#include "proto/calendar.h"

struct der {
    const uint8_t *p, *end;
};

/* Reads one element's tag and length; *body and *blen describe its
 * contents and d moves past it. */
static bool next(struct der *d, uint8_t *tag, const uint8_t **body, size_t *blen)
{
    if (d->end - d->p < 2)
        return false;
    *tag = *d->p++;
    size_t len = *d->p++;
    if (len & 0x80) {
        unsigned n = len & 0x7f;
        if (n == 0 || n > 4 || (size_t)(d->end - d->p) < n)
            return false;
        len = 0;
        while (n--)
            len = len << 8 | *d->p++;
    }
    if ((size_t)(d->end - d->p) < len)
        return false;
    *body = d->p;
    *blen = len;
    d->p += len;
    return true;
}

static bool enter(struct der *d, uint8_t want, struct der *inner)
{
    uint8_t tag;
    const uint8_t *b;
    size_t n;
    if (!next(d, &tag, &b, &n) || tag != want)
        return false;
    inner->p = b;
    inner->end = b + n;
    return true;
}

static bool digits(const uint8_t *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

/* UTCTime (0x17) "YYMMDDHHMMSSZ" or GeneralizedTime (0x18) "YYYYMMDDHHMMSSZ". */
static bool read_time(struct der *d, int64_t *out)
{
    uint8_t tag;
    const uint8_t *b;
    size_t n;
    if (!next(d, &tag, &b, &n))
        return false;
    int year, month, day, hour, minute, second;
    if (tag == 0x17 && n == 13) {
        if (!digits(b, 2, &year))
            return false;
        year += year < 50 ? 2000 : 1900;
        b += 2;
    } else if (tag == 0x18 && n == 15) {
        if (!digits(b, 4, &year))
            return false;
        b += 4;
    } else {
        return false;
    }
    if (!digits(b, 2, &month) || !digits(b + 2, 2, &day) || !digits(b + 4, 2, &hour) ||
        !digits(b + 6, 2, &minute) || !digits(b + 8, 2, &second) || b[10] != 'Z')
        return false;
    if (month < 1 || month > 12 || day < 1 || day > cal_days_in_month(year, month) || hour > 23 ||
        minute > 59 || second > 60)
        return false;
    *out = cal_days_from_civil(year, month, day) * CAL_DAY_SECONDS + hour * 3600 + minute * 60 +
           second;
    return true;
}

int x509_validity(const uint8_t *der, size_t len, int64_t *not_before, int64_t *not_after)
{
    struct der all = {der, der + len}, cert, tbs, validity;
    if (!enter(&all, 0x30, &cert) || !enter(&cert, 0x30, &tbs))
        return -1;
    uint8_t tag;
    const uint8_t *b;
    size_t n;
    /* [0] version (optional), serial, signature algorithm, issuer. */
    if (tbs.p < tbs.end && *tbs.p == 0xa0 && !next(&tbs, &tag, &b, &n))
        return -1;
    for (int i = 0; i < 3; i++)
        if (!next(&tbs, &tag, &b, &n))
            return -1;
    if (!enter(&tbs, 0x30, &validity) || !read_time(&validity, not_before) ||
        !read_time(&validity, not_after))
        return -1;
    return 0;
}
