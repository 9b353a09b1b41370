/*
 * cli.c - `trireme schedules list|get|create|update|delete|enable|disable`.
 *
 * A short-lived client like `trireme jobs`: blocking libpq, DATABASE_URL
 * (or --database-url=), one JSON document on stdout, errors one line on
 * stderr; exit 0 on success, 1 when the database said no (or the schedule
 * does not exist), 2 on bad usage or invalid input. Validation is the
 * API's (sched_input.c), so the CLI and /v1/schedules refuse the same way.
 */
#include "kernel/pq.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules/beat/beat.h"
#include "modules/jobs/cli_flags.h"
#include "modules/jobs/cli_pg.h"
#include "modules/schedules/schedules.h"
#include "modules/schedules/sql.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: trireme schedules list | get|delete|enable|disable NAME | "
            "create NAME --cron=EXPR|--every=DUR --kind=K [--queue=Q] [--payload=JSON] "
            "[--timezone=Z] [--priority=N] [--max-attempts=N] [--timeout=DUR] "
            "[--enabled=BOOL] [--misfire=skip|fire_once|fire_all] [--catchup-window=DUR] "
            "[--overlap=allow|skip_if_running] [--jitter=DUR] | update NAME [same flags]\n");
    return 2;
}

/* --flag=value pairs into a schedule object; 2 after a message when bad. */
static int flags_to_json(int argc, char **argv, int first, json_t *out)
{
    static const char *const fields[] = {
        "cron",         "every",   "timezone", "queue",   "kind",           "payload", "priority",
        "max_attempts", "timeout", "enabled",  "misfire", "catchup_window", "overlap", "jitter"};
    for (int i = first; i < argc; i++) {
        if (strncmp(argv[i], "--database-url=", 15) &&
            cli_flag_json("schedules", "--cron='*/5 * * * *'", argv[i], fields,
                          sizeof(fields) / sizeof(fields[0]), out))
            return 2;
    }
    return 0;
}

int beat_cli_schedules(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    const char *sub = argv[1];
    const char *tzdir =
        getenv("TZDIR") && *getenv("TZDIR") ? getenv("TZDIR") : "/usr/share/zoneinfo";
    const char *sql;
    const char *vals[2] = {NULL, NULL};
    int nparams = 1;
    char *text = NULL;
    bool list = !strcmp(sub, "list");
    if (list) {
        for (int i = 2; i < argc; i++)
            if (strncmp(argv[i], "--database-url=", 15)) {
                fprintf(stderr, "trireme schedules list: unknown argument %s\n", argv[i]);
                return 2;
            }
        sql = SQL_SCHED_LIST;
        nparams = 0;
    } else {
        if (argc < 3 || !strncmp(argv[2], "--", 2))
            return usage();
        const char *name = argv[2];
        if (!sched_name_valid(name, strlen(name))) {
            fprintf(stderr,
                    "trireme schedules %s: NAME must be 1 to 200 characters of "
                    "A-Z a-z 0-9 . _ - : @ + (got '%s')\n",
                    sub, name);
            return 2;
        }
        bool takes_flags = !strcmp(sub, "create") || !strcmp(sub, "update");
        if (!takes_flags) {
            for (int i = 3; i < argc; i++)
                if (strncmp(argv[i], "--database-url=", 15)) {
                    fprintf(stderr, "trireme schedules %s: unknown argument %s\n", sub, argv[i]);
                    return 2;
                }
        }
        vals[0] = name;
        if (!strcmp(sub, "get")) {
            sql = SQL_SCHED_GET;
        } else if (!strcmp(sub, "delete")) {
            sql = SQL_SCHED_DELETE;
        } else if (takes_flags || !strcmp(sub, "enable") || !strcmp(sub, "disable")) {
            json_t *in = json_object();
            int bad = 0;
            if (takes_flags)
                bad = flags_to_json(argc, argv, 3, in);
            else
                json_object_set_new(in, "enabled", json_boolean(!strcmp(sub, "enable")));
            bool create = !strcmp(sub, "create");
            if (create)
                json_object_set_new(in, "name", json_string(name));
            const char *field = NULL;
            char why[400];
            json_t *norm =
                bad ? NULL : sched_input_normalize(in, !create, tzdir, &field, why, sizeof(why));
            if (!bad && !norm) {
                fprintf(stderr, "trireme schedules %s: %s %s\n", sub, field, why);
                bad = 2;
            }
            json_decref(in);
            if (bad)
                return bad;
            text = json_dumps(norm, JSON_COMPACT);
            json_decref(norm);
            if (create) {
                sql = SQL_SCHED_CREATE;
                vals[0] = text;
                vals[1] = "api";
            } else {
                sql = SQL_SCHED_PATCH;
                vals[0] = text;
                vals[1] = name;
            }
            nparams = 2;
        } else {
            return usage();
        }
    }
    PGconn *c = cli_connect("schedules", cli_database_url(argc, argv));
    if (!c) {
        free(text);
        return 1;
    }
    PGresult *r = PQexecParams(c, sql, nparams, NULL, vals, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        char *m = PQresultErrorMessage(r);
        cli_one_line(m);
        fprintf(stderr, "trireme schedules %s: %s\n", sub, m);
        rc = 1;
    } else if (list) {
        printf("{\"schedules\":[");
        for (int i = 0; i < PQntuples(r); i++)
            printf("%s%s", i ? "," : "", PQgetvalue(r, i, 0));
        printf("]}\n");
    } else if (PQntuples(r) == 0) {
        if (!strcmp(sub, "create"))
            fprintf(stderr, "trireme schedules create: a schedule named %s already exists\n",
                    argv[2]);
        else
            fprintf(stderr, "trireme schedules %s: no schedule named %s\n", sub, argv[2]);
        rc = 1;
    } else {
        printf("%s\n", PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    PQfinish(c);
    free(text);
    return rc;
}
