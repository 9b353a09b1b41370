/*
 * auth_jwt.h - JWT bearer tokens for /v1 (HS256/HS512 with a shared
 * secret, e.g. Supabase's SUPABASE_JWT_SECRET).
 */
#ifndef TRIREME_MODULES_WEB_AUTH_JWT_H
#define TRIREME_MODULES_WEB_AUTH_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/config.h"

/* True when cfg accepts JWTs at all (a secret is configured). */
bool auth_jwt_enabled(const struct config *cfg);

/* Room for a token's space-separated scopes; longer lists are refused. */
#define AUTH_SCOPES_MAX 512

/*
 * Verifies tok (len bytes) against cfg at wall-clock second now and writes
 * its scopes (space-separated) into scopes: the "scope" claim (a string),
 * else the "scopes" claim (an array of strings), else "admin" for Supabase's
 * role service_role, else cfg->jwt_default_scopes. Returns
 * NULL when valid, else a short reason that is safe to log and to return
 * to the client: it never quotes the token or the secret.
 */
const char *auth_jwt_verify(const struct config *cfg, const char *tok, size_t len, int64_t now,
                            char scopes[AUTH_SCOPES_MAX]);

#endif
