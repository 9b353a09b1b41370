/*
 * cli.c - `trireme migrate`, `trireme enqueue`, `trireme jobs ...`.
 *
 * Short-lived client processes: blocking libpq is the right tool. Output
 * is JSON on stdout (one document), errors one line on stderr; exit 0 on
 * success, 1 when the database said no, 2 on bad usage.
 *
 * With --queue-backend=redis (or QUEUE_BACKEND=redis) `enqueue` and `jobs`
 * run the Redis backend's scripts (modules/rqueue) over hiredis' blocking
 * API instead, on REDIS_URL (or --redis-url=...).
 */
#include "kernel/pq.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernel/config.h"
#include "kernel/log.h"
#include "kernel/xalloc.h"
#include "modules/jobs/cli_pg.h"
#include "modules/jobs/job_input.h"
#include "modules/jobs/migrate.h"
#include "modules/jobs/sql.h"
#include "modules/rqueue/rqueue.h"

/* --- the Redis queue backend ------------------------------------------- */

static const char *flag_value(int argc, char **argv, const char *prefix)
{
    size_t n = strlen(prefix);
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], prefix, n))
            return argv[i] + n;
    return NULL;
}

static bool redis_backend(int argc, char **argv)
{
    const char *v = flag_value(argc, argv, "--queue-backend=");
    if (!v)
        v = getenv("QUEUE_BACKEND");
    return v && !strcasecmp(v, "redis");
}

/* Flags every command accepts besides its own. */
static bool common_flag(const char *a)
{
    return !strncmp(a, "--database-url=", 15) || !strncmp(a, "--redis-url=", 12) ||
           !strncmp(a, "--queue-backend=", 16) || !strncmp(a, "--result-ttl=", 13);
}

static redisContext *redis_connect_or_die(const char *cmd, int argc, char **argv)
{
    const char *url = flag_value(argc, argv, "--redis-url=");
    if (!url)
        url = getenv("REDIS_URL");
    if (!url || !*url) {
        fprintf(stderr, "trireme %s: set REDIS_URL (or --redis-url=...)\n", cmd);
        return NULL;
    }
    struct redis_url u;
    const char *why;
    if (redis_url_parse(url, &u, &why)) {
        fprintf(stderr, "trireme %s: REDIS_URL %s\n", cmd, why);
        return NULL;
    }
    if (u.tls) {
        /* This blocking client has no TLS; `trireme run` speaks rediss://. */
        fprintf(stderr, "trireme %s: REDIS_URL rediss:// is not supported by this command yet\n",
                cmd);
        return NULL;
    }
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout(u.host, u.port, tv);
    if (!c || c->err) {
        fprintf(stderr, "trireme %s: cannot connect to Redis at %s:%d: %s\n", cmd, u.host, u.port,
                c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    char db[16];
    snprintf(db, sizeof(db), "%d", u.db);
    const char *auth3[] = {"AUTH", u.user, u.pass}, *auth2[] = {"AUTH", u.pass},
               *sel[] = {"SELECT", db};
    for (int step = 0; step < 2; step++) {
        redisReply *r = NULL;
        if (step == 0 && *u.pass)
            r = redisCommandArgv(c, *u.user ? 3 : 2, *u.user ? auth3 : auth2, NULL);
        else if (step == 1 && u.db)
            r = redisCommandArgv(c, 2, sel, NULL);
        else
            continue;
        if (!r || r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "trireme %s: Redis refused %s: %s\n", cmd, step ? "SELECT" : "AUTH",
                    r ? r->str : c->errstr);
            freeReplyObject(r);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    return c;
}

/* EVAL one of the backend's scripts; NULL after printing why. */
static redisReply *rq_cli_eval(const char *cmd, redisContext *c, int script, struct rq_args *a)
{
    int argc = a->n + 3;
    const char **argv = xmalloc((size_t)argc * sizeof(*argv));
    size_t *lens = xmalloc((size_t)argc * sizeof(*lens));
    argv[0] = "EVAL", lens[0] = 4;
    argv[1] = rq_scripts[script], lens[1] = strlen(rq_scripts[script]);
    argv[2] = "0", lens[2] = 1;
    rq_args_vectors(a, argv + 3, lens + 3);
    redisReply *r = redisCommandArgv(c, argc, argv, lens);
    free(argv);
    free(lens);
    rq_args_free(a);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "trireme %s: Redis: %s\n", cmd, r ? r->str : c->errstr);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static void print_json(json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    printf("%s\n", text);
    free(text);
    json_decref(j);
}

static int rq_cli_enqueue(json_t *norm, int argc, char **argv)
{
    redisContext *c = redis_connect_or_die("enqueue", argc, argv);
    if (!c)
        return 1;
    struct rq_args a = {0};
    rq_args_addll(&a, 1);
    rq_enqueue_job_args(&a, norm);
    redisReply *r = rq_cli_eval("enqueue", c, RQ_ENQUEUE, &a);
    int rc = 1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        printf("{\"id\":%lld,\"status\":\"pending\",\"created\":%s}\n", r->element[0]->integer,
               r->element[1]->integer == 1 ? "true" : "false");
        rc = 0;
    } else if (r) {
        fprintf(stderr, "trireme enqueue: unexpected answer from Redis\n");
    }
    freeReplyObject(r);
    redisFree(c);
    return rc;
}

static int rq_cli_jobs(const char *sub, const char *const vals[5], int argc, char **argv)
{
    redisContext *c = redis_connect_or_die("jobs", argc, argv);
    if (!c)
        return 1;
    struct rq_args a = {0};
    redisReply *r;
    int rc = 0;
    if (!strcmp(sub, "list")) {
        for (int i = 0; i < 3; i++)
            rq_args_adds(&a, vals[i] ? vals[i] : "");
        rq_args_adds(&a, vals[3]);
        rq_args_adds(&a, vals[4] ? vals[4] : "");
        rq_args_addll(&a, RQ_LIST_BUDGET);
        r = rq_cli_eval("jobs", c, RQ_LIST, &a);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            rc = 1;
        } else {
            json_t *jobs = json_array();
            for (size_t i = 0; i < r->element[0]->elements; i++) {
                json_t *j = rq_job_json_reply(r->element[0]->element[i]);
                if (j)
                    json_array_append_new(jobs, j);
            }
            print_json(json_pack("{so}", "jobs", jobs));
        }
    } else if (!strcmp(sub, "get")) {
        char key[64];
        snprintf(key, sizeof(key), RQ_PREFIX "job:%s", vals[0]);
        r = redisCommandArgv(c, 2, (const char *[]){"HGETALL", key}, NULL);
        json_t *j = r && r->type == REDIS_REPLY_ARRAY && r->elements ? rq_job_json_reply(r) : NULL;
        if (!r)
            fprintf(stderr, "trireme jobs get: Redis: %s\n", c->errstr);
        else if (!j)
            fprintf(stderr, "trireme jobs get: no job %s (or its result expired)\n", vals[0]);
        else
            print_json(j);
        rc = j ? 0 : 1;
    } else {
        bool cancel = !strcmp(sub, "cancel");
        rq_args_adds(&a, vals[0]);
        if (cancel) {
            /* The same TTL the worker gives finished jobs. */
            const char *ttl = flag_value(argc, argv, "--result-ttl=");
            if (!ttl)
                ttl = getenv("TRIREME_RESULT_TTL");
            int64_t ms = ttl && *ttl ? config_parse_duration_ms(ttl) : 3600 * 1000;
            rq_args_addll(&a, ms > 0 ? (long long)ms : 3600 * 1000);
        }
        r = rq_cli_eval("jobs", c, cancel ? RQ_CANCEL : RQ_RETRY, &a);
        json_t *j = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2
                        ? rq_job_json_reply(r->element[1])
                        : NULL;
        if (r && !j) {
            fprintf(stderr, "trireme jobs %s: no job %s\n", sub, vals[0]);
            rc = 1;
        } else if (!r) {
            rc = 1;
        } else if (r->element[0]->integer != 1) {
            fprintf(stderr, "trireme jobs %s: job %s is %s\n", sub, vals[0],
                    cancel ? "already finished" : "not dead, failed or cancelled");
            json_decref(j);
            rc = 1;
        } else {
            print_json(j);
        }
    }
    freeReplyObject(r);
    redisFree(c);
    return rc;
}

int jobs_cli_migrate(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "--database-url=", 15)) {
            fprintf(stderr, "trireme migrate: unknown argument %s\n", argv[i]);
            return 2;
        }
    const char *url = cli_database_url(argc, argv);
    if (!url) {
        fprintf(stderr, "trireme migrate: set DATABASE_URL (or --database-url=...)\n");
        return 2;
    }
    int applied = 0;
    if (migrate_run(url, &applied))
        return 1;
    printf("{\"applied\":%d,\"version\":%u}\n", applied,
           migrations_count ? migrations[migrations_count - 1].version : 0);
    return 0;
}

int jobs_cli_enqueue(int argc, char **argv)
{
    static const char *const fields[] = {"queue",    "payload",      "run_at",  "delay",
                                         "priority", "max_attempts", "timeout", "unique_key"};
    json_t *job = json_object();
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (common_flag(a))
            continue;
        if (strncmp(a, "--", 2)) {
            if (json_object_get(job, "kind")) {
                fprintf(stderr, "trireme enqueue: one KIND only (got '%s')\n", a);
                goto out;
            }
            json_object_set_new(job, "kind", json_string(a));
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        char name[32];
        if (!eq || nl >= sizeof(name)) {
            fprintf(stderr, "trireme enqueue: flags look like --queue=NAME (got %s)\n", a);
            goto out;
        }
        memcpy(name, a + 2, nl);
        name[nl] = 0;
        for (char *p = name; *p; p++)
            if (*p == '-')
                *p = '_';
        bool known = false;
        for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++)
            known |= !strcmp(name, fields[k]);
        if (!known) {
            fprintf(stderr, "trireme enqueue: unknown flag %.*s\n", (int)(eq - a), a);
            goto out;
        }
        const char *v = eq + 1;
        json_t *val;
        if (!strcmp(name, "payload")) {
            json_error_t e;
            val = json_loads(v, JSON_DECODE_ANY, &e);
            if (!val) {
                fprintf(stderr, "trireme enqueue: --payload is not valid JSON: %s\n", e.text);
                goto out;
            }
        } else if (!strcmp(name, "priority") || !strcmp(name, "max_attempts")) {
            char *end;
            long long n = strtoll(v, &end, 10);
            if (!*v || *end) {
                fprintf(stderr, "trireme enqueue: --%s=%s is not an integer\n", name, v);
                goto out;
            }
            val = json_integer(n);
        } else {
            val = json_string(v);
        }
        json_object_set_new(job, name, val);
    }
    const char *field = NULL;
    char why[300];
    json_t *norm = job_input_normalize(job, &field, why, sizeof(why));
    if (!norm) {
        fprintf(stderr, "trireme enqueue: %s %s\n", field, why);
        goto out;
    }
    if (redis_backend(argc, argv)) {
        rc = rq_cli_enqueue(norm, argc, argv);
        json_decref(norm);
        goto out;
    }
    json_t *arr = json_array();
    json_array_append_new(arr, norm);
    char *text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    PGconn *c = cli_connect("enqueue", cli_database_url(argc, argv));
    if (!c) {
        free(text);
        rc = 1;
        goto out;
    }
    const char *vals[1] = {text};
    PGresult *r = PQexecParams(c, SQL_ENQUEUE_BATCH, 1, NULL, vals, NULL, NULL, 0);
    free(text);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        rc = cli_query_failed("enqueue", r);
    } else {
        printf("{\"id\":%s,\"status\":\"pending\",\"created\":%s}\n", PQgetvalue(r, 0, 1),
               PQgetvalue(r, 0, 2)[0] == 't' ? "true" : "false");
        PQclear(r);
        rc = 0;
    }
    PQfinish(c);
out:
    json_decref(job);
    return rc;
}

static int jobs_usage(void)
{
    /* Fix: one line, like every other refusal of bad input. */
    fprintf(stderr, "usage: trireme jobs list [--status=S] [--queue=Q] [--kind=K] [--limit=N] "
                    "[--cursor=C] | trireme jobs get|cancel|retry ID\n");
    return 2;
}

/* Fix: the same checks as GET /v1/jobs (which answers 400), so a bad value
 * exits 2 naming it instead of listing nothing (--status) or failing in the
 * database (--limit, --cursor: exit 1 with a multi-line SQL error). */
static int list_arg_invalid(int k, const char *v)
{
    static const char *const statuses[] = {"pending", "running", "succeeded",
                                           "failed",  "dead",    "cancelled"};
    bool ok = true;
    if (k == 0) {
        ok = false;
        for (int i = 0; i < 6; i++)
            ok |= !strcmp(v, statuses[i]);
        if (!ok)
            fprintf(stderr,
                    "trireme jobs list: --status must be one of pending, running, "
                    "succeeded, failed, dead, cancelled (got '%s')\n",
                    v);
    } else if (k == 3) {
        char *end;
        long n = strtol(v, &end, 10);
        ok = *v && !*end && n >= 1 && n <= 500;
        if (!ok)
            fprintf(stderr,
                    "trireme jobs list: --limit must be an integer from 1 to 500 "
                    "(got '%s')\n",
                    v);
    } else if (k == 4) {
        ok = *v && strlen(v) <= 18;
        for (const char *p = v; ok && *p; p++)
            ok = *p >= '0' && *p <= '9';
        if (!ok)
            fprintf(stderr, "trireme jobs list: --cursor must be a job id (got '%s')\n", v);
    }
    return !ok;
}

int jobs_cli_jobs(int argc, char **argv)
{
    if (argc < 2)
        return jobs_usage();
    const char *sub = argv[1];
    const char *sql = NULL;
    const char *vals[5] = {NULL, NULL, NULL, "50", NULL};
    int nparams = 1;
    if (!strcmp(sub, "list")) {
        static const char *const names[] = {
            "--status=", "--queue=", "--kind=", "--limit=", "--cursor="};
        for (int i = 2; i < argc; i++) {
            bool ok = common_flag(argv[i]);
            for (int k = 0; k < 5; k++)
                if (!strncmp(argv[i], names[k], strlen(names[k]))) {
                    vals[k] = argv[i] + strlen(names[k]);
                    if (list_arg_invalid(k, vals[k]))
                        return 2;
                    ok = true;
                }
            if (!ok) {
                fprintf(stderr, "trireme jobs list: unknown argument %s\n", argv[i]);
                return 2;
            }
        }
        sql = SQL_JOB_LIST;
        nparams = 5;
    } else if (!strcmp(sub, "get") || !strcmp(sub, "cancel") || !strcmp(sub, "retry")) {
        if (argc < 3)
            return jobs_usage();
        const char *id = argv[2];
        bool ok = *id && strlen(id) <= 18;
        for (const char *p = id; ok && *p; p++)
            ok = *p >= '0' && *p <= '9';
        if (!ok) {
            fprintf(stderr, "trireme jobs %s: ID must be a positive integer (got '%s')\n", sub, id);
            return 2;
        }
        vals[0] = id;
        sql = !strcmp(sub, "get")      ? SQL_JOB_GET
              : !strcmp(sub, "cancel") ? SQL_JOB_CANCEL
                                       : SQL_JOB_RETRY;
    } else {
        return jobs_usage();
    }
    if (redis_backend(argc, argv))
        return rq_cli_jobs(sub, vals, argc, argv);
    PGconn *c = cli_connect("jobs", cli_database_url(argc, argv));
    if (!c)
        return 1;
    PGresult *r = PQexecParams(c, sql, nparams, NULL, vals, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = cli_query_failed("jobs", r);
        PQfinish(c);
        return rc;
    }
    int rows = PQntuples(r);
    if (!strcmp(sub, "list")) {
        printf("{\"jobs\":[");
        for (int i = 0; i < rows; i++)
            printf("%s%s", i ? "," : "", PQgetvalue(r, i, 0));
        printf("]}\n");
    } else if (rows == 0) {
        fprintf(stderr, "trireme jobs %s: no job %s\n", sub, vals[0]);
        rc = 1;
    } else if (strcmp(sub, "get") && PQgetvalue(r, 0, 1)[0] != 't') {
        fprintf(stderr, "trireme jobs %s: job %s is %s\n", sub, vals[0],
                !strcmp(sub, "cancel") ? "already finished" : "not dead, failed or cancelled");
        rc = 1;
    } else {
        printf("%s\n", PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}

int jobs_cli_leader(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "--database-url=", 15)) {
            fprintf(stderr, "trireme leader: unknown argument %s\n", argv[i]);
            return 2;
        }
    PGconn *c = cli_connect("leader", cli_database_url(argc, argv));
    if (!c)
        return 1;
    PGresult *r =
        PQexec(c, "SELECT coalesce(jsonb_agg(jsonb_build_object('election', name, 'token',"
                  " token, 'holder', holder, 'backend', backend, 'since', since,"
                  " 'renewed_at', renewed_at) ORDER BY name), '[]')::text"
                  " FROM trireme.leaders");
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = cli_query_failed("leader", r);
    else {
        printf("{\"leaders\":%s}\n", PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    PQfinish(c);
    return rc;
}
