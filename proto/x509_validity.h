/*
 * x509_validity.h - the validity period of a DER X.509 certificate, pure.
 * BearSSL checks dates while it verifies a chain but exposes none, and an
 * operator wants to hear that a certificate expires next week before it
 * does (`trireme doctor`, the log line on a SIGHUP reload).
 */
#ifndef TRIREME_PROTO_X509_VALIDITY_H
#define TRIREME_PROTO_X509_VALIDITY_H

#include <stddef.h>
#include <stdint.h>

/*
 * Reads Certificate.tbsCertificate.validity from der: notBefore and
 * notAfter as Unix seconds (UTCTime years 50-99 are 19xx, as RFC 5280
 * says). Returns 0, or -1 when der is not a certificate this can walk.
 */
int x509_validity(const uint8_t *der, size_t len, int64_t *not_before, int64_t *not_after);

#endif
