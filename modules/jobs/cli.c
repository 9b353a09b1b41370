/*
 * cli.c - `trireme migrate`, `trireme enqueue`, `trireme jobs ...`,
 * `trireme leader`.
 *
 * Output is JSON on stdout (one document), errors one line on stderr;
 * exit 0 on success, 1 when the job store said no (or cannot be reached),
 * 2 on bad usage.
 *
 * `enqueue` and `jobs` check their input as the web API does (job_input.h)
 * and then make one call of the queue backend's API, the code /v1/jobs
 * runs (cli_queue.h), on whichever backend --queue-backend names.
 * `migrate` and `leader` speak blocking libpq: they run SQL of the job
 * store itself, the same on every backend, and a blocking connection is
 * the simplest tool for a process that does one thing and exits.
 */
#include "kernel/pq.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules/jobs/cli_flags.h"
#include "modules/jobs/cli_pg.h"
#include "modules/jobs/cli_queue.h"
#include "modules/jobs/job_input.h"
#include "modules/jobs/migrate.h"
#include "modules/kinds/kinds_file.h"

#define LIST_DEFAULT   50   /* `jobs list` without --limit, as GET /v1/jobs */
#define ERROR_LINE_MAX 1024 /* a store's error on stderr, truncated beyond */

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

/* One call of the queue API: `enqueue`, or a `jobs` subcommand. */
struct api_cmd {
    const char *sub; /* "enqueue", "list", "get", "cancel" or "retry" */
    json_t *job;     /* enqueue: normalized */
    const char *id;  /* get, cancel, retry: as given */
    struct queue_list_query list;
};

static struct queue_call *start_call(const struct queue_api_ops *ops, void *api, void *arg,
                                     queue_answer_fn fn, void *data)
{
    struct api_cmd *c = arg;
    int64_t id = c->id ? strtoll(c->id, NULL, 10) : 0;
    switch (c->sub[0]) {
    case 'e':
        return ops->enqueue(api, json_pack("[O]", c->job), false, fn, data);
    case 'l':
        return ops->list(api, &c->list, fn, data);
    case 'g':
        return ops->get(api, id, fn, data);
    case 'c':
        return ops->cancel(api, id, fn, data);
    default:
        return ops->retry(api, id, fn, data);
    }
}

/* A backend's 404 reads "no job with this id", perhaps followed by why
 * (" (or its result expired)"): the command names the id instead, and
 * `get` keeps the why. */
static const char NO_JOB[] = "no job with this id";

static int show_answer(void *arg, const struct queue_answer *a)
{
    struct api_cmd *c = arg;
    if (a->status == 404) {
        bool why = c->sub[0] == 'g' && !strncmp(a->message, NO_JOB, strlen(NO_JOB));
        fprintf(stderr, "trireme jobs %s: no job %s%s\n", c->sub, c->id,
                why ? a->message + strlen(NO_JOB) : "");
    } else if (a->status == 409) {
        fprintf(stderr, "trireme jobs %s: job %s is %s\n", c->sub, c->id,
                c->sub[0] == 'c' ? "already finished" : "not dead, failed or cancelled");
    } else if (a->status >= 300) {
        char m[ERROR_LINE_MAX];
        /* The operator at the CLI sees the store's own words. */
        snprintf(m, sizeof(m), "%s", a->detail ? a->detail : a->message);
        cli_one_line(m);
        fprintf(stderr, "trireme %s: %s\n", c->job ? "enqueue" : "jobs", m);
    } else if (c->sub[0] != 'l') {
        printf("%.*s\n", (int)a->len, a->body);
    } else {
        /* {"jobs":[...]} alone: the body ends with its ,"next_cursor":...
         * (queue_api.h), which the command leaves out (--cursor= pages). */
        static const char cur[] = ",\"next_cursor\":";
        size_t n = a->len, k = sizeof(cur) - 1;
        while (n >= k && memcmp(a->body + n - k, cur, k))
            n--;
        if (n >= k)
            printf("%.*s}\n", (int)(n - k), a->body);
        else
            printf("%.*s\n", (int)a->len, a->body);
    }
    return a->status >= 300;
}

int jobs_cli_enqueue(int argc, char **argv)
{
    static const char *const fields[] = {"queue",    "payload",      "run_at",  "delay",
                                         "priority", "max_attempts", "timeout", "unique_key"};
    json_t *job = json_object();
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_queue_flag(a) || !strncmp(a, "--kinds=", 8))
            continue;
        if (!strncmp(a, "--", 2)) {
            if (cli_flag_json("enqueue", "--queue=NAME", a, fields,
                              sizeof(fields) / sizeof(fields[0]), job))
                goto out;
        } else if (json_object_get(job, "kind")) {
            fprintf(stderr, "trireme enqueue: one KIND only (got '%s')\n", a);
            goto out;
        } else {
            json_object_set_new(job, "kind", json_string(a));
        }
    }
    /* Kinds the operator declared (--kinds, as `trireme run` reads it) are
     * known here too. */
    struct kinds_file kinds = {0};
    const char *kinds_path = cli_setting(argc, argv, "--kinds=", "TRIREME_KINDS");
    char why[700];
    if (kinds_path && kinds_file_load(kinds_path, &kinds, why, sizeof(why))) {
        fprintf(stderr, "trireme enqueue: --kinds: %s\n", why);
        goto out;
    }
    job_kinds_declare(&kinds);
    const char *field = NULL;
    json_t *norm = job_input_normalize(job, &field, why, sizeof(why));
    if (!norm) {
        fprintf(stderr, "trireme enqueue: %s %s\n", field, why);
    } else {
        struct api_cmd c = {.sub = "enqueue", .job = norm};
        rc = cli_queue_run("enqueue", argc, argv, start_call, show_answer, &c);
        json_decref(norm);
    }
    job_kinds_declare(NULL);
    kinds_file_free(&kinds);
out:
    json_decref(job);
    return rc;
}

static int jobs_usage(void)
{
    fprintf(stderr, "usage: trireme jobs list [--status=S] [--queue=Q] [--kind=K] [--limit=N] "
                    "[--cursor=C] | trireme jobs get|cancel|retry ID\n");
    return 2;
}

/* The same checks as GET /v1/jobs (which answers 400): a bad value exits
 * 2 naming it. k indexes list_flags. */
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
    static const char *const list_flags[] = {
        "--status=", "--queue=", "--kind=", "--limit=", "--cursor="};
    if (argc < 2)
        return jobs_usage();
    struct api_cmd j = {.sub = argv[1], .list.limit = LIST_DEFAULT};
    const char **given[] = {&j.list.status, &j.list.queue, &j.list.kind, NULL, &j.list.cursor};
    if (!strcmp(j.sub, "list")) {
        for (int i = 2; i < argc; i++) {
            bool ok = cli_queue_flag(argv[i]);
            for (int k = 0; k < 5; k++) {
                size_t n = strlen(list_flags[k]);
                if (strncmp(argv[i], list_flags[k], n))
                    continue;
                if (list_arg_invalid(k, argv[i] + n))
                    return 2;
                if (given[k])
                    *given[k] = argv[i] + n;
                else
                    j.list.limit = atoi(argv[i] + n);
                ok = true;
            }
            if (!ok) {
                fprintf(stderr, "trireme jobs list: unknown argument %s\n", argv[i]);
                return 2;
            }
        }
    } else if (!strcmp(j.sub, "get") || !strcmp(j.sub, "cancel") || !strcmp(j.sub, "retry")) {
        if (argc < 3)
            return jobs_usage();
        j.id = argv[2];
        bool ok = *j.id && strlen(j.id) <= 18;
        for (const char *p = j.id; ok && *p; p++)
            ok = *p >= '0' && *p <= '9';
        if (!ok) {
            fprintf(stderr, "trireme jobs %s: ID must be a positive integer (got '%s')\n", j.sub,
                    j.id);
            return 2;
        }
    } else {
        return jobs_usage();
    }
    return cli_queue_run("jobs", argc, argv, start_call, show_answer, &j);
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
