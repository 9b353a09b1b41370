/*
 * doctor.c - `trireme doctor`: can trireme run here, with this configuration?
 *
 * It reads the same flags and environment as `trireme run` and checks what
 * a start would need, one line per check: OK, WARN (it runs, but something
 * will bite) or FAIL (it will not work), each WARN and FAIL followed by the
 * fix. Exit 0 when nothing failed, 1 when something did, 2 on a bad flag.
 *
 * A short-lived client process: blocking libpq and hiredis calls, each
 * bounded by DOCTOR_TIMEOUT_S, are the right tools here.
 */
#include <errno.h>
#include <stdbool.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>

#include "kernel/config.h"
#include "kernel/log.h"
#include "kernel/loop.h"
#include "kernel/module.h"
#include "kernel/pq.h"
#include "kernel/redis.h"
#include "kernel/tls.h"
#include "kernel/xalloc.h"
#include "modules/jobs/migrate.h"
#include "modules/queue/queue.h"
#include "modules/web/jwt_keys.h"
#include "proto/rfc3339.h"

#define DOCTOR_TIMEOUT_S     5     /* each connection attempt */
#define DOCTOR_SKEW_WARN_MS  1000  /* database clock this far from ours: WARN */
#define DOCTOR_FD_HEADROOM   256   /* descriptors beyond --max-connections (pools, files, logs) */
#define DOCTOR_REDIS_MIN_VER 60200 /* XAUTOCLAIM: Redis 6.2 */

enum verdict { V_OK, V_SKIP, V_WARN, V_FAIL };

struct doctor {
    struct config cfg;
    unsigned failed, warned;
};

/* One check's line, then, for WARN and FAIL, the fix on the next. */
static void say(struct doctor *d, enum verdict v, const char *what, const char *fix,
                const char *fmt, ...)
{
    static const char *const tag[] = {"OK", "SKIP", "WARN", "FAIL"};
    char text[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    /* One line: libpq's messages carry newlines, tabs and hints. */
    char *w = text;
    for (const char *p = text; *p; p++) {
        bool space = *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t';
        if (!space || (w > text && w[-1] != ' '))
            *w++ = space ? ' ' : *p;
    }
    while (w > text && w[-1] == ' ')
        w--;
    *w = 0;
    printf("%-4s  %-10s %s\n", tag[v], what, text);
    if (fix && v >= V_WARN)
        printf("      %-10s fix: %s\n", "", fix);
    d->failed += v == V_FAIL;
    d->warned += v == V_WARN;
}

/* --- TLS ------------------------------------------------------------------ */

/* The certificate and key load as `run` would load them, match, and are
 * not near their end; the CA bundle loads when a client verifies. */
static void check_tls(struct doctor *d)
{
    const struct config *c = &d->cfg;
    bool need_anchors = !strncmp(c->redis_url, "rediss://", 9);
    if (!*c->tls_cert && !need_anchors) {
        say(d, V_SKIP, "tls", NULL, "no --tls-cert and no rediss://");
        return;
    }
    struct tls_store st;
    char why[768];
    if (tls_store_load(&st, c->tls_cert, c->tls_key, c->tls_ca_file, need_anchors, 0, 0, why,
                       sizeof(why)) < 0) {
        say(d, V_FAIL, "tls", "point the flag at a PEM file of the right kind", "%s", why);
        return;
    }
    if (need_anchors)
        say(d, V_OK, "tls", NULL, "%zu trust anchors from %s", st.nanchors, c->tls_ca_file);
    const struct tls_identity *id = tls_store_identity(&st);
    if (id) {
        char until[40];
        rfc3339_format_s(id->not_after, until, sizeof(until));
        int64_t now = (int64_t)time(NULL), days = (id->not_after - now) / 86400;
        if (id->not_after <= now)
            say(d, V_FAIL, "tls", "renew the certificate, then send trireme SIGHUP",
                "%s expired at %s", c->tls_cert, until);
        else if (id->not_before > now)
            say(d, V_FAIL, "tls", "check the host clock, or wait until the certificate is valid",
                "%s is not valid before its notBefore", c->tls_cert);
        else if (days < TLS_EXPIRY_WARN_DAYS)
            say(d, V_WARN, "tls", "renew the certificate, then send trireme SIGHUP",
                "%s expires at %s, in %lld day%s", c->tls_cert, until, (long long)days,
                days == 1 ? "" : "s");
        else
            say(d, V_OK, "tls", NULL, "%s and its key match, valid until %s (%lld days)",
                c->tls_cert, until, (long long)days);
    }
    tls_store_free(&st);
}

/* --- JWT keys ------------------------------------------------------------- */

/* --jwt-public-key-file and --jwt-jwks-file load as the web role's start
 * would load them (a bad file stops that start). */
static void check_jwt(struct doctor *d)
{
    const struct config *c = &d->cfg;
    if (!*c->jwt_public_key_file && !*c->jwt_jwks_file) {
        say(d, V_SKIP, "jwt", NULL, "no --jwt-public-key-file and no --jwt-jwks-file");
        return;
    }
    struct jwt_keys *ks = xmalloc(sizeof(*ks));
    char why[900];
    if (jwt_keys_load(ks, c->jwt_public_key_file, c->jwt_jwks_file, why, sizeof(why)) < 0)
        say(d, V_FAIL, "jwt",
            "give a PEM public key (RSA 2048-4096 bits or EC P-256) or a JWK Set of them", "%s",
            why);
    else
        say(d, V_OK, "jwt", NULL,
            "%zu public key%s (RS256: %s, ES256: %s), %zu JWKS entr%s skipped", ks->n,
            ks->n == 1 ? "" : "s", jwt_keys_serve(ks, JWT_RS256) ? "yes" : "no",
            jwt_keys_serve(ks, JWT_ES256) ? "yes" : "no", ks->skipped,
            ks->skipped == 1 ? "y" : "ies");
    free(ks);
}

/* --- the process ---------------------------------------------------------- */

static void check_roles(struct doctor *d)
{
    char *text = NULL;
    size_t len = 0;
    FILE *err = open_memstream(&text, &len);
    int rc = modules_resolve(&d->cfg, err);
    fclose(err);
    if (rc) {
        /* "trireme: role 'worker' cannot start: it needs DATABASE_URL" */
        const char *msg = strncmp(text, "trireme: ", 9) ? text : text + 9;
        say(d, V_FAIL, "roles", "set what the role needs, or leave the role out (--roles=...)",
            "%s", msg);
    } else {
        char roles[128];
        modules_roles_string(&d->cfg, roles, sizeof(roles));
        say(d, V_OK, "roles", NULL, "%s", roles);
        /* No role named: the ones that cannot run are left out at start. */
        for (unsigned i = 0; i < modules_builtin_count; i++) {
            const struct module *m = modules_builtin[i];
            const char *why = m->is_role && m->unmet ? m->unmet(&d->cfg) : NULL;
            if (why && !*d->cfg.roles)
                say(d, V_WARN, "roles", "configure it, or name the roles you want (--roles=...)",
                    "%s will be off: %s", m->name, why);
        }
    }
    free(text);
}

static void check_io_uring(struct doctor *d)
{
    struct utsname u;
    const char *kernel = uname(&u) ? "?" : u.release;
    struct loop l;
    struct loop_config lc = {
        .entries = d->cfg.ring_entries,
        .recv_bufs = d->cfg.recv_bufs,
        .recv_buf_size = d->cfg.recv_buf_size,
        .pool_chunk = 4096,
        .pool_max_free = 1,
    };
    int rc = loop_init(&l, 0, &lc);
    if (!rc) {
        bool defer = (l.setup_flags & IORING_SETUP_DEFER_TASKRUN) != 0;
        loop_free(&l);
        say(d, V_OK, "io_uring", NULL, "usable (Linux %s%s)", kernel,
            defer ? ", single issuer, deferred task running"
                  : ", older kernel: fewer ring features");
        return;
    }
    if (rc == -EPERM || rc == -ENOSYS) {
        FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
        int disabled = 0;
        if (f) {
            if (fscanf(f, "%d", &disabled) != 1)
                disabled = 0;
            fclose(f);
        }
        if (disabled == 2)
            say(d, V_FAIL, "io_uring", "sysctl -w kernel.io_uring_disabled=0",
                "disabled on this host (kernel.io_uring_disabled=2)");
        else if (disabled == 1)
            say(d, V_FAIL, "io_uring",
                "add this user to the group kernel.io_uring_group names, or set "
                "kernel.io_uring_disabled=0",
                "restricted to one group on this host (kernel.io_uring_disabled=1)");
        else if (rc == -ENOSYS)
            say(d, V_FAIL, "io_uring",
                "run on Linux 6.1 or newer, or allow io_uring_setup/enter/register in the "
                "container's seccomp profile",
                "not available (Linux %s): the kernel lacks it or a seccomp filter hides it",
                kernel);
        else
            say(d, V_FAIL, "io_uring",
                "allow io_uring_setup/enter/register in the seccomp profile (Docker's default "
                "blocks them: --security-opt seccomp=<profile>)",
                "refused (Linux %s): blocked by a seccomp filter", kernel);
        return;
    }
    if (rc == -ENOMEM)
        say(d, V_FAIL, "io_uring", "raise ulimit -l (memlock), or lower --ring-entries/--recv-bufs",
            "cannot set up the ring or its receive buffers: out of locked memory");
    else
        say(d, V_FAIL, "io_uring", "run on Linux 6.1 or newer",
            "cannot set up the ring (Linux %s): %s", kernel, strerror(-rc));
}

static void check_fds(struct doctor *d)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) {
        say(d, V_WARN, "files", NULL, "cannot read the open-files limit: %s", strerror(errno));
        return;
    }
    /* trireme raises its soft limit to the hard one at start. */
    unsigned long long have =
        rl.rlim_max == RLIM_INFINITY ? ~0ull : (unsigned long long)rl.rlim_max;
    unsigned long long need = (unsigned long long)d->cfg.max_connections + DOCTOR_FD_HEADROOM;
    if (have < need)
        say(d, V_WARN, "files",
            "raise the hard limit (ulimit -Hn, LimitNOFILE= in systemd, --ulimit nofile= in "
            "Docker) or lower --max-connections",
            "open-files limit %llu is below --max-connections=%u plus %d for pools and logs", have,
            d->cfg.max_connections, DOCTOR_FD_HEADROOM);
    else
        say(d, V_OK, "files", NULL, "open-files limit %llu (--max-connections=%u)", have,
            d->cfg.max_connections);
}

/* --- PostgreSQL ------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One value of a one-row query, copied into out; false when it failed. */
static bool query_value(PGconn *c, const char *sql, char *out, size_t cap)
{
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (ok)
        snprintf(out, cap, "%s", PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
    else
        snprintf(out, cap, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

static void check_schema(struct doctor *d, PGconn *c)
{
    unsigned want = migrations_count ? migrations[migrations_count - 1].version : 0;
    char v[256];
    if (!query_value(c,
                     "SELECT coalesce(max(version), 0) FROM trireme.schema_migrations "
                     "WHERE to_regclass('trireme.schema_migrations') IS NOT NULL",
                     v, sizeof(v))) {
        if (!query_value(c, "SELECT to_regclass('trireme.schema_migrations') IS NOT NULL", v,
                         sizeof(v)) ||
            strcmp(v, "t")) {
            say(d, V_FAIL, "schema",
                "trireme migrate (or start with --migrate-auto, the default, on one instance)",
                "not applied to this database (this binary needs version %u)", want);
            return;
        }
        say(d, V_FAIL, "schema", "check the database user's rights on schema trireme",
            "cannot read trireme.schema_migrations: %s", v);
        return;
    }
    unsigned have = (unsigned)strtoul(v, NULL, 10);
    if (have < want)
        say(d, V_FAIL, "schema", "trireme migrate", "at version %u; this binary needs %u", have,
            want);
    else if (have > want)
        say(d, V_WARN, "schema", "run the newer binary that applied it, or expect refused calls",
            "at version %u, newer than this binary knows (%u)", have, want);
    else
        say(d, V_OK, "schema", NULL, "at version %u", have);
}

static void check_clock(struct doctor *d, PGconn *c)
{
    char v[64];
    double t0 = now_s();
    bool ok = query_value(c, "SELECT extract(epoch FROM clock_timestamp())", v, sizeof(v));
    double t1 = now_s();
    if (!ok) {
        say(d, V_WARN, "clock", NULL, "cannot read the database's clock: %s", v);
        return;
    }
    double skew_ms = (atof(v) - (t0 + t1) / 2) * 1000;
    double bound_ms = (t1 - t0) * 1000 / 2; /* half the round trip: what we cannot tell apart */
    if (skew_ms > DOCTOR_SKEW_WARN_MS + bound_ms || skew_ms < -DOCTOR_SKEW_WARN_MS - bound_ms)
        say(d, V_WARN, "clock",
            "synchronise both clocks (NTP): run_at, delays and leases compare them",
            "the database's clock is %.0f ms %s this host's", skew_ms < 0 ? -skew_ms : skew_ms,
            skew_ms < 0 ? "behind" : "ahead of");
    else
        say(d, V_OK, "clock", NULL, "the database's clock is within %.0f ms of this host's",
            (skew_ms < 0 ? -skew_ms : skew_ms) + bound_ms);
}

static PGconn *pg_connect(struct doctor *d, const char *what, const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) == CONNECTION_OK)
        return c;
    say(d, V_FAIL, what, "check the URL, that PostgreSQL runs and accepts this host and user",
        "cannot connect: %s", PQerrorMessage(c));
    PQfinish(c);
    return NULL;
}

static void check_postgres(struct doctor *d)
{
    const struct config *cfg = &d->cfg;
    if (!*cfg->database_url) {
        say(d, V_SKIP, "database", NULL, "DATABASE_URL is not set");
        return;
    }
    const char *why;
    if (pq_load(&why)) {
        say(d, V_FAIL, "database", "install libpq (Debian: libpq5)", "libpq cannot be loaded: %s",
            why);
        return;
    }
    if (!getenv("PGCONNECT_TIMEOUT")) {
        char t[16];
        snprintf(t, sizeof(t), "%d", DOCTOR_TIMEOUT_S);
        setenv("PGCONNECT_TIMEOUT", t, 0);
    }
    PGconn *c = pg_connect(d, "database", cfg->database_url);
    if (!c)
        return;
    const char *ver = PQparameterStatus(c, "server_version");
    /* Whether sslmode in the URL took effect: libpq answers from the
     * connection it already has, no round trip. */
    if (PQsslInUse(c)) {
        const char *proto = PQsslAttribute(c, "protocol"), *cipher = PQsslAttribute(c, "cipher");
        say(d, V_OK, "database", NULL, "reachable (PostgreSQL %s) over TLS (%s, %s)",
            ver ? ver : "?", proto ? proto : "?", cipher ? cipher : "?");
    } else {
        say(d, V_OK, "database", NULL, "reachable (PostgreSQL %s), not encrypted", ver ? ver : "?");
    }
    check_schema(d, c);
    check_clock(d, c);
    PQfinish(c);

    if (cfg->pg_pooler_transaction) {
        if (!*cfg->database_direct_url) {
            say(d, V_WARN, "pooler",
                "set DATABASE_DIRECT_URL to a direct (or session-pooled) connection",
                "transaction pooler: with no direct URL, workers poll every --poll-interval "
                "instead of listening, and migrations need a direct connection");
        } else if ((c = pg_connect(d, "pooler", cfg->database_direct_url))) {
            say(d, V_OK, "pooler", NULL,
                "transaction pooler; the direct URL for LISTEN and migrations is reachable");
            PQfinish(c);
        }
    } else {
        /* The ports PgBouncer and Supabase's pooler listen on by default. */
        const char *port = strstr(cfg->database_url, ":6432/")   ? "6432"
                           : strstr(cfg->database_url, ":6543/") ? "6543"
                                                                 : NULL;
        if (port)
            say(d, V_WARN, "pooler",
                "if it pools transactions, set --pg-pooler=transaction (or ?pgbouncer=true) and "
                "DATABASE_DIRECT_URL",
                "DATABASE_URL uses port %s, a connection pooler's usual port", port);
    }
}

/* --- Redis ------------------------------------------------------------------ */

/* A field of INFO's text ("redis_version:7.0.15"), or "" when absent. */
static void info_field(const char *info, const char *name, char *out, size_t cap)
{
    *out = 0;
    size_t n = strlen(name);
    for (const char *p = info; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, name, n) && p[n] == ':') {
            size_t len = strcspn(p + n + 1, "\r\n");
            snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), p + n + 1);
            return;
        }
}

/* The server's CONFIG GET value, or "" when CONFIG is refused (managed Redis). */
static void config_value(redisContext *c, const char *name, char *out, size_t cap)
{
    *out = 0;
    redisReply *r = redisCommand(c, "CONFIG GET %s", name);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING)
        snprintf(out, cap, "%s", r->element[1]->str);
    freeReplyObject(r);
}

static void check_redis_queue(struct doctor *d, redisContext *c)
{
    char v[64];
    config_value(c, "maxmemory-policy", v, sizeof(v));
    if (*v && strcmp(v, "noeviction"))
        say(d, V_FAIL, "durability", "CONFIG SET maxmemory-policy noeviction (and in redis.conf)",
            "maxmemory-policy is %s: under memory pressure Redis deletes jobs", v);
    char aof[16], save[256];
    config_value(c, "appendonly", aof, sizeof(aof));
    config_value(c, "save", save, sizeof(save));
    if (!strcmp(aof, "no") && !*save)
        say(d, V_WARN, "durability", "appendonly yes (appendfsync everysec or always)",
            "no AOF and no snapshots: a Redis restart loses every job");
    else if (!strcmp(aof, "no"))
        say(d, V_WARN, "durability", "appendonly yes (appendfsync everysec or always)",
            "snapshots only: a Redis restart loses the jobs since the last one");
    else if (*aof)
        say(d, V_OK, "durability", NULL, "appendonly %s", aof);
}

static void check_redis(struct doctor *d)
{
    const struct config *cfg = &d->cfg;
    if (!*cfg->redis_url) {
        say(d, V_SKIP, "redis", NULL, "REDIS_URL is not set");
        return;
    }
    struct redis_url u;
    const char *err;
    if (redis_url_parse(cfg->redis_url, &u, &err)) {
        say(d, V_FAIL, "redis", "redis://[:password@]host[:port][/db]", "REDIS_URL: %s", err);
        return;
    }
    struct timeval tv = {.tv_sec = DOCTOR_TIMEOUT_S};
    redisContext *c = redisConnectWithTimeout(u.host, u.port, tv);
    if (!c || c->err) {
        say(d, V_FAIL, "redis", "check the URL and that Redis runs and accepts this host",
            "cannot connect to %s:%d: %s", u.host, u.port, c ? c->errstr : "out of memory");
        redisFree(c);
        return;
    }
    redisSetTimeout(c, tv);
    redisReply *r = NULL;
    if (*u.pass) {
        r = *u.user ? redisCommand(c, "AUTH %s %s", u.user, u.pass)
                    : redisCommand(c, "AUTH %s", u.pass);
    } else {
        r = redisCommand(c, "PING");
    }
    if (!r || r->type == REDIS_REPLY_ERROR) {
        say(d, V_FAIL, "redis", "check the password (and user) in REDIS_URL", "%s",
            r ? r->str : c->errstr);
        freeReplyObject(r);
        redisFree(c);
        return;
    }
    freeReplyObject(r);
    r = redisCommand(c, "INFO server");
    char ver[32] = "";
    if (r && r->type == REDIS_REPLY_STRING)
        info_field(r->str, "redis_version", ver, sizeof(ver));
    freeReplyObject(r);
    unsigned a = 0, b = 0, p = 0;
    sscanf(ver, "%u.%u.%u", &a, &b, &p);
    if (a * 10000 + b * 100 + p < DOCTOR_REDIS_MIN_VER)
        say(d, V_FAIL, "redis", "use Redis 6.2 or newer (or Valkey)",
            "Redis %s is too old: the queue and leader scripts need 6.2", *ver ? ver : "(unknown)");
    else
        say(d, V_OK, "redis", NULL, "reachable (Redis %s)", ver);
    if (queue_backend_of(cfg)->needs & QUEUE_NEEDS_REDIS)
        check_redis_queue(d, c);
    redisFree(c);
}

/* --------------------------------------------------------------------------- */

static int doctor_run(int argc, char **argv)
{
    struct doctor *d = xcalloc(1, sizeof(*d));
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: trireme doctor [flags of trireme run]\n"
                   "Checks what `trireme run` with the same flags and environment needs: roles,\n"
                   "io_uring, open files, TLS (certificate, key, expiry, CA bundle), JWT key\n"
                   "files, PostgreSQL (reachable, schema, clock, pooler), Redis (reachable,\n"
                   "version, durability). Exit 0 when no check failed, 1 when one did, 2 on a\n"
                   "bad flag.\n");
            free(d);
            return 0;
        }
    int rc = config_load(&d->cfg, argc, argv, 1, stderr);
    if (rc) {
        free(d);
        return rc;
    }
    log_setup(LOG_ERROR, false); /* the checks speak for themselves */
    say(d, V_OK, "config", NULL, "flags and environment parse");
    check_roles(d);
    check_io_uring(d);
    check_fds(d);
    check_tls(d);
    check_jwt(d);
    check_postgres(d);
    check_redis(d);
    printf("%u failed, %u warning%s\n", d->failed, d->warned, d->warned == 1 ? "" : "s");
    rc = d->failed ? 1 : 0;
    free(d);
    return rc;
}

static const struct module_command doctor_commands[] = {
    {"doctor", "check that trireme can run here with these flags: one line per check", doctor_run},
    {NULL, NULL, NULL},
};

const struct module doctor_module = {
    .name = "doctor",
    .summary = "`trireme doctor`: what a start with these settings needs, checked",
    .is_role = false,
    .commands = doctor_commands,
};
