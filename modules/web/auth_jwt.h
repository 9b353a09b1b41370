/*
 * auth_jwt.h - JWT bearer tokens for /v1: HS256/HS512 with a shared
 * secret (e.g. Supabase's SUPABASE_JWT_SECRET), RS256/ES256 with the
 * public keys of --jwt-public-key-file and --jwt-jwks-file (jwt_keys.h).
 */
#ifndef TRIREME_MODULES_WEB_AUTH_JWT_H
#define TRIREME_MODULES_WEB_AUTH_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/config.h"

struct jwt_keys;

/* True when cfg accepts JWTs at all (a secret or a key file is configured). */
bool auth_jwt_enabled(const struct config *cfg);

/* Room for a token's space-separated scopes; longer lists are refused. */
#define AUTH_SCOPES_MAX 512

/*
 * Verifies tok (len bytes) against cfg and keys (NULL when no key file is
 * configured) at wall-clock second now and writes
 * its scopes (space-separated) into scopes: the "scope" claim (a string),
 * else the "scopes" claim (an array of strings), else "admin" for Supabase's
 * role service_role, else cfg->jwt_default_scopes. Returns
 * NULL when valid, else a short reason that is safe to log and to return
 * to the client: it never quotes the token or the secret.
 */
const char *auth_jwt_verify(const struct config *cfg, const struct jwt_keys *keys, const char *tok,
                            size_t len, int64_t now, char scopes[AUTH_SCOPES_MAX]);

#endif
