/*
 * config.h - every setting of `trireme run`, from flags and environment.
 *
 * One table (config.c) names each setting: flag, environment variable,
 * default, limits and help text. Flags win over the environment, which wins
 * over defaults. `trireme --help` is generated from the same table, so a
 * setting cannot exist without being documented. The struct is filled once
 * before any thread starts and read-only afterwards.
 */
#ifndef TRIREME_KERNEL_CONFIG_H
#define TRIREME_KERNEL_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_MAX_ROLES 8

enum { LEADER_NONE = 0, LEADER_REDIS, LEADER_POSTGRES };
#define QUEUE_BACKEND_NAME_MAX 16 /* --queue-backend, NUL included */

struct config {
    /* process */
    char host[256];
    int port;
    int threads;
    char roles[128];    /* as given: "web,worker" */
    unsigned role_mask; /* bit per module slot, resolved by modules_resolve */
    int log_level;
    bool log_json;
    uint64_t grace_ms;
    /* kernel */
    unsigned ring_entries;
    unsigned recv_bufs;
    unsigned recv_buf_size;
    unsigned pool_max_free;
    int backlog;
    /* http */
    unsigned max_connections;
    unsigned max_head;
    unsigned max_uri;
    unsigned max_headers;
    uint64_t max_body;
    uint64_t header_timeout_ms;
    uint64_t body_timeout_ms;
    uint64_t idle_timeout_ms;
    bool access_log;
    /* metrics (GET /metrics, modules/web/metrics.c) */
    bool metrics;                /* --metrics: serve GET /metrics */
    bool metrics_public;         /* --metrics-public: without an API key */
    unsigned metrics_max_series; /* label sets per family and loop */
    /* tls (kernel/tls.h; BearSSL: TLS 1.2 at most) */
    char tls_cert[512];         /* --tls-cert: PEM chain; with tls_key the web role serves HTTPS */
    char tls_key[512];          /* --tls-key: PEM private key, RSA or EC */
    char tls_ca_file[512];      /* --tls-ca-file: PEM anchors clients verify servers against */
    unsigned tls_session_cache; /* --tls-session-cache: bytes per loop, 0 = none */
    /* database */
    char database_url[1024];
    char database_direct_url[1024];
    unsigned pg_pool;
    bool pg_pooler_transaction; /* --pg-pooler=transaction or ?pgbouncer=true */
    bool migrate_auto;
    /* jobs API */
    char api_keys[2048]; /* comma-separated */
    char master_api_key[256];
    bool insecure_no_auth;
    char jwt_secret[512];          /* HMAC key for HS256/HS512, used as-is */
    char supabase_jwt_secret[512]; /* same, under Supabase's variable name */
    char jwt_public_key_file[512]; /* PEM public key(s) for RS256/ES256 */
    char jwt_jwks_file[512];       /* JWK Set of public keys for RS256/ES256 */
    unsigned jwt_leeway;           /* seconds of clock skew allowed on exp/nbf */
    char jwt_issuer[256];          /* required "iss" when set */
    char jwt_audience[256];        /* required in "aud" when set */
    char jwt_default_scopes[256];  /* scopes of a JWT without scope claims */
    char cors_origins[1024];       /* comma-separated exact origins, or "*" */
    unsigned cors_max_age;         /* seconds a browser may cache a preflight */
    /* uploads (multipart POST /v1/jobs: modules/web/api_uploads.c) */
    unsigned upload_max_file;    /* --upload-max-file: one file's bytes; larger gets 413 */
    unsigned upload_max_request; /* --upload-max-request: a multipart body's bytes */
    unsigned upload_max_files;   /* --upload-max-files: file parts per request */
    unsigned upload_chunk;       /* --upload-chunk: bytes per stored chunk */
    char upload_url_secret[256]; /* --upload-url-secret: HMAC key of signed file URLs */
    uint64_t upload_url_ttl_ms;  /* --upload-url-ttl: lifetime of a signed file URL */
    char public_url[512];        /* --public-url: where clients reach the web role */
    char upload_tmp_dir[256]; /* --upload-tmp-dir: exec kinds' job file directories; "": $TMPDIR */
    /* worker */
    char queues[512]; /* comma-separated */
    unsigned concurrency;
    unsigned batch_size;
    uint64_t poll_interval_ms;
    uint64_t lease_ms;
    uint64_t job_timeout_ms; /* default per-job time limit */
    char sql_jobs[256];      /* file of named SQL statements for the `sql` kind */
    /* retention (modules/jobs/retention.h); 0 keeps rows forever */
    uint64_t retention_succeeded_ms;
    uint64_t retention_dead_ms;
    uint64_t retention_cancelled_ms;
    uint64_t retention_fires_ms;
    uint64_t retention_orphans_ms; /* --retention-upload-orphans */
    uint64_t retention_interval_ms;
    unsigned retention_batch;
    /* redis and leader election */
    char redis_url[1024];
    bool redis_enabled;
    int leader_backend; /* LEADER_NONE, LEADER_REDIS, LEADER_POSTGRES */
    uint64_t leader_ttl_ms;
    uint64_t leader_renew_ms;    /* 0: a third of the TTL */
    bool worker_mode_leader;     /* --worker-mode=leader: only the elected instance fetches */
    char rate_limits[2048];      /* rules, see --help: "POST /v1/jobs ip 100/1m" */
    char kind_limits[1024];      /* "sleep 10/1s; sql 100/1m" */
    char kinds_file[512];        /* --kinds: JSON file of operator-declared kinds */
    char pull_kinds[1024];       /* --pull-kinds: kinds external workers pull, comma-separated */
    char http_allow_hosts[1024]; /* --http-allow-hosts: the generic http kind's hosts */
    /* beat */
    char schedules_file[512];       /* --schedules: JSON file reconciled into trireme.schedules */
    char tzdir[256];                /* the system tz database (TZif files) */
    uint64_t beat_poll_interval_ms; /* fallback check for a lost NOTIFY */
    unsigned beat_catchup_max;      /* slots one schedule fires when catching up */
    unsigned beat_batch;            /* slots per fire statement */
    unsigned beat_max_schedules;    /* schedules one beat loads */
    /* the Redis queue backend (modules/rqueue) */
    char queue_backend[QUEUE_BACKEND_NAME_MAX]; /* a name modules/queue/backends.c knows */
    uint64_t result_ttl_ms;                     /* a finished job's hash lives this long */
    uint64_t promote_interval_ms; /* delayed/retried jobs are moved onto streams this often */
    /* compatibility */
    int worker_enabled; /* -1 unset, 0/1 from WORKER_ENABLED */
};

/* Fill *c from defaults and environment, then argv[first..argc).
 * Returns 0, or 2 after printing one line naming the bad input to err. */
int config_load(struct config *c, int argc, char **argv, int first, FILE *err);
/* The --help text of `trireme run`. */
void config_help(FILE *out);
/* Parse "250ms", "10s", "2m", "1h", "7d" or plain seconds. -1 when invalid. */
int64_t config_parse_duration_ms(const char *s);
/* Parse bytes, or with k/m/g (KiB, MiB, GiB). -1 when invalid. */
int64_t config_parse_size(const char *s);

#endif
