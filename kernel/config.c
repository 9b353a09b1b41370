/*
 * config.c - the settings table behind `trireme run` and its --help.
 */
#include "kernel/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernel/log.h"
#include "kernel/redis.h"
#include "kernel/tls.h"

enum opt_type {
    T_STR,
    T_INT,
    T_UINT,
    T_SIZE,
    T_DUR,
    T_BOOL,
    T_LEVEL,
    T_FORMAT,
    T_TRIBOOL,
    T_POOLER,
    T_MIGRATE,
    T_LEADER,
    T_WORKER_MODE,
    T_QUEUE_BACKEND,
};

struct opt {
    const char *flag; /* without the leading "--" */
    const char *env;  /* NULL: flag only */
    const char *def;  /* default, as text (parsed like user input) */
    enum opt_type type;
    size_t off;
    size_t size; /* T_STR buffer size */
    int64_t min, max;
    const char *help;
};

#define OFF(f) offsetof(struct config, f)

static const struct opt opts[] = {
    {"host", "HOST", "0.0.0.0", T_STR, OFF(host), sizeof(((struct config *)0)->host), 0, 0,
     "Address the web role listens on (IPv4 or IPv6 literal, or a name)."},
    {"port", "PORT", "8000", T_INT, OFF(port), 0, 1, 65535, "TCP port the web role listens on."},
    {"threads", "TRIREME_THREADS", "0", T_INT, OFF(threads), 0, 0, 256,
     "Event-loop threads, each with its own io_uring and listener; 0 = one per CPU."},
    {"roles", "TRIREME_ROLES", "", T_STR, OFF(roles), sizeof(((struct config *)0)->roles), 0, 0,
     "Comma-separated roles to start (web, worker, beat); empty = every role built in."},
    {"log-level", "LOG_LEVEL", "info", T_LEVEL, OFF(log_level), 0, 0, 0,
     "debug, info, warn, error or off."},
    {"log-format", "LOG_FORMAT", "text", T_FORMAT, OFF(log_json), 0, 0, 0,
     "text or json: one line per event either way."},
    {"grace", "TRIREME_GRACE", "30s", T_DUR, OFF(grace_ms), 0, 0, 24 * 3600 * 1000LL,
     "On SIGTERM/SIGINT, time to finish in-flight work before exiting (a second signal exits at "
     "once)."},
    {"max-connections", "TRIREME_MAX_CONNECTIONS", "16384", T_UINT, OFF(max_connections), 0, 1,
     1000000, "Open HTTP connections per process; beyond it new ones are closed at accept."},
    {"max-header-bytes", "TRIREME_MAX_HEADER_BYTES", "16k", T_SIZE, OFF(max_head), 0, 1024,
     1024 * 1024, "Request line plus headers; larger requests get 431."},
    {"max-uri-bytes", "TRIREME_MAX_URI_BYTES", "8k", T_SIZE, OFF(max_uri), 0, 64, 1024 * 1024,
     "Request-target length; longer gets 414."},
    {"max-headers", "TRIREME_MAX_HEADERS", "100", T_UINT, OFF(max_headers), 0, 1, 1000,
     "Header fields per request; more gets 431."},
    {"max-body-bytes", "TRIREME_MAX_BODY_BYTES", "1m", T_SIZE, OFF(max_body), 0, 0,
     1024LL * 1024 * 1024, "Request body (after chunked decoding); larger gets 413."},
    {"header-timeout", "TRIREME_HEADER_TIMEOUT", "10s", T_DUR, OFF(header_timeout_ms), 0, 1,
     3600 * 1000LL, "Time for a request's headers to arrive once it started (slowloris guard)."},
    {"body-timeout", "TRIREME_BODY_TIMEOUT", "30s", T_DUR, OFF(body_timeout_ms), 0, 1,
     3600 * 1000LL,
     "Time for a request body to arrive once its headers did (a streamed upload: between two "
     "pieces the client sends; not while the server is storing)."},
    {"idle-timeout", "TRIREME_IDLE_TIMEOUT", "60s", T_DUR, OFF(idle_timeout_ms), 0, 1,
     24 * 3600 * 1000LL, "Keep-alive: an idle connection is closed after this."},
    {"access-log", "TRIREME_ACCESS_LOG", "true", T_BOOL, OFF(access_log), 0, 0, 0,
     "One log line per HTTP request (method, path, status, bytes, duration, request id)."},
    {"metrics", "TRIREME_METRICS", "true", T_BOOL, OFF(metrics), 0, 0, 0,
     "Serve GET /metrics (Prometheus text format) on the web role; API key as on /v1 unless "
     "--metrics-public."},
    {"metrics-public", "TRIREME_METRICS_PUBLIC", "false", T_BOOL, OFF(metrics_public), 0, 0, 0,
     "GET /metrics without an API key (for a scraper on a private network)."},
    {"metrics-max-series", "TRIREME_METRICS_MAX_SERIES", "100", T_UINT, OFF(metrics_max_series), 0,
     1, 10000,
     "Label sets per metric family (queue x kind, route x method x status); more are counted "
     "under the label value \"other\"."},
    /* TLS, by BearSSL: TLS 1.0 to 1.2 (BearSSL implements no TLS 1.3). */
    {"tls-cert", "TRIREME_TLS_CERT", "", T_STR, OFF(tls_cert),
     sizeof(((struct config *)0)->tls_cert), 0, 0,
     "PEM certificate chain (server certificate first); with --tls-key the web role serves "
     "HTTPS, TLS 1.2 at most (BearSSL), on --port instead of plain HTTP."},
    {"tls-key", "TRIREME_TLS_KEY", "", T_STR, OFF(tls_key), sizeof(((struct config *)0)->tls_key),
     0, 0, "PEM private key of --tls-cert (RSA or EC; PKCS#8 or the traditional forms)."},
    {"tls-ca-file", "TRIREME_TLS_CA_FILE", TLS_CA_FILE_DEFAULT, T_STR, OFF(tls_ca_file),
     sizeof(((struct config *)0)->tls_ca_file), 0, 0,
     "PEM bundle of the CAs trusted by TLS clients (rediss://), loaded once at start; server "
     "names are verified against the certificate."},
    {"tls-session-cache", "TRIREME_TLS_SESSION_CACHE", TLS_SESSION_CACHE_DEFAULT, T_SIZE,
     OFF(tls_session_cache), 0, 0, 64LL * 1024 * 1024,
     "HTTPS: session cache per thread, so returning clients resume without a full handshake "
     "(about 100 bytes a session); 0 = off."},
    {"ring-entries", "TRIREME_RING_ENTRIES", "1024", T_UINT, OFF(ring_entries), 0, 64, 32768,
     "Submission queue size of each io_uring (the completion queue is 4x)."},
    {"recv-buffers", "TRIREME_RECV_BUFFERS", "1024", T_UINT, OFF(recv_bufs), 0, 16, 32768,
     "Provided receive buffers per thread (a power of two)."},
    {"recv-buffer-size", "TRIREME_RECV_BUFFER_SIZE", "4k", T_SIZE, OFF(recv_buf_size), 0, 512,
     1024 * 1024, "Bytes per provided receive buffer."},
    {"buffer-pool-free", "TRIREME_BUFFER_POOL_FREE", "256", T_UINT, OFF(pool_max_free), 0, 0,
     1000000, "Idle 16 KiB connection-buffer chunks kept per thread for reuse."},
    {"backlog", "TRIREME_BACKLOG", "4096", T_INT, OFF(backlog), 0, 1, 65535,
     "listen() backlog of each listener."},
    {"database-url", "DATABASE_URL", "", T_STR, OFF(database_url),
     sizeof(((struct config *)0)->database_url), 0, 0,
     "PostgreSQL, URI or key=value form (sslmode passes through to libpq; ?pgbouncer=true "
     "implies --pg-pooler=transaction)."},
    {"database-direct-url", "DATABASE_DIRECT_URL", "", T_STR, OFF(database_direct_url),
     sizeof(((struct config *)0)->database_direct_url), 0, 0,
     "Direct (unpooled) PostgreSQL URL for LISTEN and migrations when DATABASE_URL is a pooler."},
    {"pg-pool", "TRIREME_PG_POOL", "2", T_UINT, OFF(pg_pool), 0, 1, 64,
     "PostgreSQL connections per thread and role (each runs many queries in pipeline mode)."},
    {"pg-pooler", "TRIREME_PG_POOLER", "none", T_POOLER, OFF(pg_pooler_transaction), 0, 0, 0,
     "none or transaction (PgBouncer/Supavisor): no session state on pooled connections."},
    {"migrate", "TRIREME_MIGRATE", "auto", T_MIGRATE, OFF(migrate_auto), 0, 0, 0,
     "auto: apply schema migrations at start (advisory-locked); off: only `trireme migrate`."},
    {"api-keys", "TRIREME_API_KEYS", "", T_STR, OFF(api_keys),
     sizeof(((struct config *)0)->api_keys), 0, 0,
     "Comma-separated keys accepted as `Authorization: Bearer <key>` on /v1."},
    {NULL, "MASTER_API_KEY", "", T_STR, OFF(master_api_key),
     sizeof(((struct config *)0)->master_api_key), 0, 0,
     "Compatibility: one more accepted API key."},
    {"upload-max-file", "TRIREME_UPLOAD_MAX_FILE", "100m", T_SIZE, OFF(upload_max_file), 0, 1,
     4095LL * 1024 * 1024,
     "One file uploaded with a job (multipart POST /v1/jobs); larger gets 413, nothing stored."},
    {"upload-max-request", "TRIREME_UPLOAD_MAX_REQUEST", "256m", T_SIZE, OFF(upload_max_request), 0,
     1, 4095LL * 1024 * 1024,
     "A whole multipart POST /v1/jobs body; larger gets 413 and nothing is stored."},
    {"upload-max-files", "TRIREME_UPLOAD_MAX_FILES", "16", T_UINT, OFF(upload_max_files), 0, 1,
     1000, "File parts in one multipart POST /v1/jobs; more gets 413."},
    {"upload-chunk", "TRIREME_UPLOAD_CHUNK", "256k", T_SIZE, OFF(upload_chunk), 0, 4096,
     16 * 1024 * 1024,
     "Uploads are stored in chunks of this size, written as they arrive: about three chunks is "
     "the memory one upload takes."},
    {"upload-url-secret", "TRIREME_UPLOAD_URL_SECRET", "", T_STR, OFF(upload_url_secret),
     sizeof(((struct config *)0)->upload_url_secret), 0, 0,
     "HMAC-SHA256 key that signs uploaded files' URLs (/v1/jobs/{id}/files/{name}?expires=&sig=, "
     "given in the upload's answer, fetched without an API key); empty: no signed URLs."},
    {"upload-url-ttl", "TRIREME_UPLOAD_URL_TTL", "15m", T_DUR, OFF(upload_url_ttl_ms), 0, 1000,
     7 * 24 * 3600 * 1000LL, "Lifetime of a signed file URL."},
    {"public-url", "TRIREME_PUBLIC_URL", "", T_STR, OFF(public_url),
     sizeof(((struct config *)0)->public_url), 0, 0,
     "The URL clients reach the web role at (https://api.example.com): the base of the signed "
     "file URLs http kinds with \"files\": true send their endpoints."},
    {"upload-tmp-dir", "TRIREME_UPLOAD_TMP_DIR", "", T_STR, OFF(upload_tmp_dir),
     sizeof(((struct config *)0)->upload_tmp_dir), 0, 0,
     "Where exec kinds get a job's uploaded files: a private directory (0700) per attempt, "
     "removed after it; empty: $TMPDIR, else /tmp."},
    {"insecure-no-auth", "TRIREME_INSECURE_NO_AUTH", "false", T_BOOL, OFF(insecure_no_auth), 0, 0,
     0, "Local development only: /v1 without an API key (logged as a warning at start)."},
    {"jwt-secret", "JWT_SECRET", "", T_STR, OFF(jwt_secret),
     sizeof(((struct config *)0)->jwt_secret), 0, 0,
     "Accept HS256/HS512 JWT bearer tokens signed with this secret (the string is the key)."},
    {NULL, "SUPABASE_JWT_SECRET", "", T_STR, OFF(supabase_jwt_secret),
     sizeof(((struct config *)0)->supabase_jwt_secret), 0, 0,
     "Compatibility: the --jwt-secret under Supabase's name."},
    {"jwt-public-key-file", "TRIREME_JWT_PUBLIC_KEY_FILE", "", T_STR, OFF(jwt_public_key_file),
     sizeof(((struct config *)0)->jwt_public_key_file), 0, 0,
     "Accept RS256/ES256 JWT bearer tokens signed by this PEM public key (BEGIN PUBLIC KEY: RSA "
     "2048-4096 bits or EC P-256; also BEGIN RSA PUBLIC KEY or a CERTIFICATE's key); read once "
     "at start (restart to rotate)."},
    {"jwt-jwks-file", "TRIREME_JWT_JWKS_FILE", "", T_STR, OFF(jwt_jwks_file),
     sizeof(((struct config *)0)->jwt_jwks_file), 0, 0,
     "Accept RS256/ES256 JWT bearer tokens signed by a key of this JWK Set file (kty RSA, or EC "
     "with crv P-256); a token's kid picks the key with that kid; read once at start."},
    {"jwt-leeway", "TRIREME_JWT_LEEWAY", "60", T_UINT, OFF(jwt_leeway), 0, 0, 3600,
     "Seconds of clock skew allowed on a JWT's exp and nbf."},
    {"jwt-issuer", "TRIREME_JWT_ISSUER", "", T_STR, OFF(jwt_issuer),
     sizeof(((struct config *)0)->jwt_issuer), 0, 0, "When set, a JWT's iss must equal it."},
    {"jwt-audience", "TRIREME_JWT_AUDIENCE", "", T_STR, OFF(jwt_audience),
     sizeof(((struct config *)0)->jwt_audience), 0, 0,
     "When set, a JWT's aud (string or array) must contain it."},
    {"jwt-default-scopes", "TRIREME_JWT_DEFAULT_SCOPES", "jobs:read jobs:write", T_STR,
     OFF(jwt_default_scopes), sizeof(((struct config *)0)->jwt_default_scopes), 0, 0,
     "Space-separated scopes of a JWT with no scope/scopes claim (role service_role: admin)."},
    {"cors-origins", "CORS_ORIGINS", "", T_STR, OFF(cors_origins),
     sizeof(((struct config *)0)->cors_origins), 0, 0,
     "Comma-separated exact origins allowed to call /v1 from a browser, or * (no credentials)."},
    {"cors-max-age", "TRIREME_CORS_MAX_AGE", "600", T_UINT, OFF(cors_max_age), 0, 0, 86400,
     "Seconds a browser may cache a CORS preflight answer."},
    {"queues", "TRIREME_QUEUES", "default", T_STR, OFF(queues),
     sizeof(((struct config *)0)->queues), 0, 0,
     "Worker: comma-separated queues to take jobs from."},
    {"concurrency", "TRIREME_CONCURRENCY", "64", T_UINT, OFF(concurrency), 0, 1, 100000,
     "Worker: jobs running at once per process, split across its loops."},
    {"batch-size", "TRIREME_BATCH_SIZE", "512", T_UINT, OFF(batch_size), 0, 1, 10000,
     "Worker: most jobs one claim takes, per loop. A claim asks for the free slots of "
     "--concurrency; while jobs finish within their own start (noop), for a whole batch. A "
     "claimed job that finds no slot waits in the worker, leased but not started (its time "
     "limit not counting), and is handed back at a drain."},
    {"poll-interval", "TRIREME_POLL_INTERVAL", "2s", T_DUR, OFF(poll_interval_ms), 0, 10,
     3600 * 1000LL, "Worker: fallback poll when no NOTIFY arrives (plain numbers are seconds)."},
    {"lease", "TRIREME_LEASE", "30s", T_DUR, OFF(lease_ms), 0, 1000, 3600 * 1000LL,
     "Worker: lease of a running job, renewed every third of it while the job runs."},
    {"job-timeout", "TRIREME_JOB_TIMEOUT", "15m", T_DUR, OFF(job_timeout_ms), 0, 10,
     7 * 24 * 3600 * 1000LL, "Worker: time limit of a job that sets no timeout of its own."},
    {"sql-jobs", "TRIREME_SQL_JOBS", "", T_STR, OFF(sql_jobs),
     sizeof(((struct config *)0)->sql_jobs), 0, 0,
     "Worker: file of named statements for the `sql` job kind (`name: SQL` per line)."},
    {"retention-succeeded", "TRIREME_RETENTION_SUCCEEDED", "7d", T_DUR, OFF(retention_succeeded_ms),
     0, 0, 3650 * 24 * 3600 * 1000LL,
     "Succeeded jobs are deleted this long after they finished (0: kept). PostgreSQL backend; "
     "on Redis finished jobs expire after --result-ttl."},
    {"retention-dead", "TRIREME_RETENTION_DEAD", "30d", T_DUR, OFF(retention_dead_ms), 0, 0,
     3650 * 24 * 3600 * 1000LL,
     "Dead jobs are deleted this long after they failed for good (0: kept)."},
    {"retention-cancelled", "TRIREME_RETENTION_CANCELLED", "7d", T_DUR, OFF(retention_cancelled_ms),
     0, 0, 3650 * 24 * 3600 * 1000LL, "Cancelled jobs are deleted this long after (0: kept)."},
    {"retention-upload-orphans", "TRIREME_RETENTION_UPLOAD_ORPHANS", "1d", T_DUR,
     OFF(retention_orphans_ms), 0, 0, 3650 * 24 * 3600 * 1000LL,
     "Files of an upload that never became a job (its server stopped mid-upload) are deleted "
     "this long after they were written (0: kept); on the Redis backend also the files of a job "
     "whose hash is gone, once its id is this old."},
    {"retention-fires", "TRIREME_RETENTION_FIRES", "30d", T_DUR, OFF(retention_fires_ms), 0, 0,
     3650 * 24 * 3600 * 1000LL,
     "Beat's record of fired slots (trireme.schedule_fires) is deleted after this (0: kept); "
     "each schedule's latest slot stays."},
    {"retention-interval", "TRIREME_RETENTION_INTERVAL", "1m", T_DUR, OFF(retention_interval_ms), 0,
     100, 24 * 3600 * 1000LL,
     "How often one worker (and the elected beat) looks for old rows; batches follow each other "
     "while they find some."},
    {"retention-batch", "TRIREME_RETENTION_BATCH", "1000", T_UINT, OFF(retention_batch), 0, 1,
     100000, "Rows read and deleted per retention statement and kind of row."},
    {"redis-url", "REDIS_URL", "", T_STR, OFF(redis_url), sizeof(((struct config *)0)->redis_url),
     0, 0,
     "Redis, redis://[user:pass@]host:port/db, or rediss:// for TLS (verified against "
     "--tls-ca-file). Unset: Redis features are off."},
    {"redis-enabled", "REDIS_ENABLED", "true", T_BOOL, OFF(redis_enabled), 0, 0, 0,
     "false ignores REDIS_URL (Redis features off, /readyz reports redis disabled)."},
    {"leader", "TRIREME_LEADER", "none", T_LEADER, OFF(leader_backend), 0, 0, 0,
     "Leader election: none, redis (SET NX PX lease + fencing token) or postgres (session "
     "advisory lock; needs a direct or session-pooled connection, not a transaction pooler)."},
    {"leader-ttl", "TRIREME_LEADER_TTL", "2s", T_DUR, OFF(leader_ttl_ms), 0, 300, 600 * 1000LL,
     "Redis leader lease; a crashed leader is replaced within about this long."},
    {"leader-renew", "TRIREME_LEADER_RENEW", "0", T_DUR, OFF(leader_renew_ms), 0, 0, 300 * 1000LL,
     "How often the leader renews (and standbys retry); 0 = a third of --leader-ttl."},
    {"worker-mode", "TRIREME_WORKER_MODE", "compete", T_WORKER_MODE, OFF(worker_mode_leader), 0, 0,
     0,
     "compete: every instance fetches (SKIP LOCKED); leader: only the elected one (needs "
     "--leader)."},
    {"rate-limits", "TRIREME_RATE_LIMITS", "", T_STR, OFF(rate_limits),
     sizeof(((struct config *)0)->rate_limits), 0, 0,
     "HTTP rate limits enforced in Redis across all instances: rules `METHOD PATH KEY N/WINDOW` "
     "separated by `;` - METHOD or *, PATH exact or ending in *, KEY ip, key (API key) or "
     "header:NAME; e.g. \"POST /v1/jobs ip 100/1m\". Beyond it: 429 with Retry-After."},
    {"kinds", "TRIREME_KINDS", "", T_STR, OFF(kinds_file), sizeof(((struct config *)0)->kinds_file),
     0, 0,
     "Job kinds the operator declares (never an API client), a JSON file: {\"kinds\": {\"NAME\": "
     "{\"type\": \"exec\", \"argv\": [\"/usr/bin/python3\", \"job.py\"], ...}}}. Give every role "
     "the same file: the API accepts declared kinds, the worker runs them. exec fields: argv, env "
     "{NAME: VALUE}, inherit_env [NAMES] (default PATH HOME LANG LC_ALL TZ TMPDIR), cwd, "
     "concurrency (default: the CPU count), timeout (the kind's default time limit), kill_after "
     "(SIGTERM to SIGKILL of the process group, default 5s), memory_limit (RLIMIT_AS, e.g. "
     "\"512m\"), max_stdout (the result, default 1m), stderr_tail (kept for last_error, default "
     "2k), max_progress_line (default 1k); mode \"pool\" keeps processes running, a job per line "
     "(processes, default the CPU count; jobs_per_process, default 1; max_jobs_per_process, "
     "default 0 = never recycle). See docs/operations.md."},
    {"pull-kinds", "TRIREME_PULL_KINDS", "", T_STR, OFF(pull_kinds),
     sizeof(((struct config *)0)->pull_kinds), 0, 0,
     "Job kinds run by external workers that pull them (POST /v1/claim), comma-separated, e.g. "
     "render_pdf,orchestrate: the same as {\"type\": \"pull\"} in --kinds. The built-in "
     "worker never takes them. A claim takes max (default 1, at most 1000) jobs for lease "
     "seconds (default 30, at most 3600), waiting up to wait seconds (default 0, at most 60)."},
    {"http-allow-hosts", "TRIREME_HTTP_ALLOW_HOSTS", "", T_STR, OFF(http_allow_hosts),
     sizeof(((struct config *)0)->http_allow_hosts), 0, 0,
     "Hosts the generic job kind `http` may call, comma-separated (names and address literals); "
     "empty: no generic kind. Its jobs go to the payload's \"url\" (its \"payload\" is sent); "
     "a name resolving to a private or loopback address is refused unless that address is "
     "listed too. Signed when TRIREME_HTTP_SECRET holds a whsec_ secret. Declared kinds: "
     "{\"type\": \"http\"} in --kinds, or TRIREME_HTTP_KIND_<kind>=<url>."},
    {"kind-limits", "TRIREME_KIND_LIMITS", "", T_STR, OFF(kind_limits),
     sizeof(((struct config *)0)->kind_limits), 0, 0,
     "Worker: fleet-wide starts per job kind, enforced in Redis: `KIND N/WINDOW` separated by "
     "`;`, e.g. \"sql 100/1s\". A job over the limit waits (not an attempt) until its turn."},
    /* beat */
    {"schedules", "TRIREME_SCHEDULES", "", T_STR, OFF(schedules_file),
     sizeof(((struct config *)0)->schedules_file), 0, 0,
     "Beat: a JSON file of schedules reconciled into trireme.schedules at start: "
     "{\"schedules\":[{\"name\":\"n\",\"cron\":\"*/5 * * * *\",\"kind\":\"noop\",...}]} (fields as "
     "POST /v1/schedules). Entries added, changed or removed in the file are applied; schedules "
     "made through the API or CLI are left alone."},
    {"tzdir", "TZDIR", "/usr/share/zoneinfo", T_STR, OFF(tzdir),
     sizeof(((struct config *)0)->tzdir), 0, 0,
     "Beat: the IANA time zone database (Debian package tzdata)."},
    {"beat-poll-interval", "TRIREME_BEAT_POLL_INTERVAL", "30s", T_DUR, OFF(beat_poll_interval_ms),
     0, 100, 3600 * 1000LL,
     "Beat: how often to check trireme.schedules for a change whose NOTIFY was lost."},
    {"beat-catchup-max", "TRIREME_BEAT_CATCHUP_MAX", "1000", T_UINT, OFF(beat_catchup_max), 0, 1,
     1000000, "Beat: most missed slots one fire_all schedule fires after downtime (the latest)."},
    {"beat-batch", "TRIREME_BEAT_BATCH", "500", T_UINT, OFF(beat_batch), 0, 1, 100000,
     "Beat: due slots fired per statement (one transaction; on Redis one enqueue script call, "
     "then one statement)."},
    {"beat-max-schedules", "TRIREME_BEAT_MAX_SCHEDULES", "100000", T_UINT, OFF(beat_max_schedules),
     0, 1, 10000000,
     "Beat: enabled schedules one beat loads; beyond it the rest are refused, "
     "logged."},
    {"queue-backend", "QUEUE_BACKEND", "postgres", T_QUEUE_BACKEND, OFF(queue_backend), 0, 0, 0,
     "Where jobs live: postgres (trireme.jobs, SKIP LOCKED) or redis (a Stream per queue with a "
     "consumer group, needs REDIS_URL; DATABASE_URL then only serves the sql kind and beat, which "
     "keeps schedules in PostgreSQL and enqueues each slot's job in Redis). The redis "
     "backend differs: no transactional enqueue (the SQL trireme.enqueue() writes to PostgreSQL, "
     "not to Redis); an enqueue is as durable as Redis' appendfsync (none without AOF); finished "
     "jobs expire after --result-ttl (then GET answers 404 and the unique_key is free again); "
     "each queue is FIFO (priority is stored, not used for ordering); cancelling a running job "
     "stops it at once via PUBLISH (or at its next lease renewal); listing filters scan the newest "
     "jobs first, at most 10000 per call (next_cursor continues); leader mode's fencing token is "
     "not checked on completion (worker id and attempt are); no Redis Cluster (one server)."},
    {"result-ttl", "TRIREME_RESULT_TTL", "1h", T_DUR, OFF(result_ttl_ms), 0, 1000,
     365 * 24 * 3600 * 1000LL,
     "Redis queue backend: how long a finished job (status, result, error) stays readable (a "
     "success up to a second longer: running workers delete successes in batches); "
     "also how long beat's per-slot unique key dedups a slot not yet recorded in PostgreSQL."},
    {"promote-interval", "TRIREME_PROMOTE_INTERVAL", "100ms", T_DUR, OFF(promote_interval_ms), 0,
     10, 60 * 1000LL,
     "Redis queue backend: how often a worker moves due delayed and retried jobs onto their "
     "streams (sooner when the next one is due sooner)."},
    {NULL, "WORKER_ENABLED", "", T_TRIBOOL, OFF(worker_enabled), 0, 0, 0,
     "Compatibility: true adds the worker role to --roles, false removes it."},
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

/* Variables other stacks' deployments already set, read as a fallback for
 * the flag named (the TRIREME_ variable wins when both are set). */
static const struct {
    const char *env, *flag;
} aliases[] = {
    {"CELERY_CONCURRENCY", "concurrency"},
    {"OUTBOX_WORKER_BATCH_SIZE", "batch-size"},
    {"OUTBOX_WORKER_INTERVAL_SECONDS", "poll-interval"},
};
#define NALIASES (sizeof(aliases) / sizeof(aliases[0]))

static const struct opt *find_opt(const char *flag, size_t len)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].flag && strlen(opts[i].flag) == len && !strncmp(opts[i].flag, flag, len))
            return &opts[i];
    return NULL;
}

/* "?pgbouncer=true" (a Prisma convention the seeds use) is not a libpq
 * parameter: drop it from the URL and switch to transaction-pooler mode. */
static void strip_pgbouncer(struct config *c)
{
    char *u = c->database_url;
    char *q = strchr(u, '?');
    if (!q)
        return;
    char out[sizeof(c->database_url)];
    size_t n = (size_t)(q - u);
    memcpy(out, u, n);
    char sep = '?';
    for (char *p = q + 1; *p;) {
        char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len >= 10 && !strncmp(p, "pgbouncer=", 10)) {
            if (!strncasecmp(p + 10, "true", 4) || p[10] == '1')
                c->pg_pooler_transaction = true;
        } else {
            out[n++] = sep;
            memcpy(out + n, p, len);
            n += len;
            sep = '&';
        }
        p += len + (amp ? 1 : 0);
    }
    out[n] = 0;
    memcpy(u, out, n + 1);
}

static int parse_bool(const char *s)
{
    if (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes") || !strcasecmp(s, "on"))
        return 1;
    if (!strcasecmp(s, "false") || !strcmp(s, "0") || !strcasecmp(s, "no") || !strcasecmp(s, "off"))
        return 0;
    return -1;
}

static bool parse_i64(const char *s, int64_t *out)
{
    if (!*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || !(isdigit((unsigned char)*s) || *s == '-'))
        return false;
    *out = v;
    return true;
}

int64_t config_parse_duration_ms(const char *s)
{
    if (!*s || !isdigit((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || v < 0)
        return -1;
    double mul;
    if (!*end || !strcmp(end, "s"))
        mul = 1000;
    else if (!strcmp(end, "ms"))
        mul = 1;
    else if (!strcmp(end, "m"))
        mul = 60000;
    else if (!strcmp(end, "h"))
        mul = 3600000;
    else if (!strcmp(end, "d"))
        mul = 86400000;
    else
        return -1;
    double ms = v * mul;
    if (ms > 9e15)
        return -1;
    return (int64_t)(ms + 0.5);
}

int64_t config_parse_size(const char *s)
{
    if (!*s || !isdigit((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    unsigned long long mul = 1;
    if (!strcasecmp(end, "k") || !strcasecmp(end, "kb") || !strcasecmp(end, "kib"))
        mul = 1024;
    else if (!strcasecmp(end, "m") || !strcasecmp(end, "mb") || !strcasecmp(end, "mib"))
        mul = 1024 * 1024;
    else if (!strcasecmp(end, "g") || !strcasecmp(end, "gb") || !strcasecmp(end, "gib"))
        mul = 1024ull * 1024 * 1024;
    else if (*end)
        return -1;
    if (v > (unsigned long long)INT64_MAX / mul)
        return -1;
    return (int64_t)(v * mul);
}

/* Apply one value. Returns NULL or a static description of what is wrong. */
static const char *apply(struct config *c, const struct opt *o, const char *v, char *why,
                         size_t whylen)
{
    char *field = (char *)c + o->off;
    int64_t n = 0;
    switch (o->type) {
    case T_STR:
        if (strlen(v) >= o->size)
            return "is too long";
        strcpy(field, v);
        return NULL;
    case T_BOOL: {
        int b = parse_bool(v);
        if (b < 0)
            return "is not a boolean (use true or false)";
        *(bool *)field = b;
        return NULL;
    }
    case T_TRIBOOL: {
        int b = *v ? parse_bool(v) : -1;
        if (*v && b < 0)
            return "is not a boolean (use true or false)";
        *(int *)field = b;
        return NULL;
    }
    case T_LEVEL: {
        int lv = log_level_parse(v);
        if (lv < 0)
            return "is not a log level (debug, info, warn, error, off)";
        *(int *)field = lv;
        return NULL;
    }
    case T_POOLER:
        if (!strcasecmp(v, "transaction"))
            *(bool *)field = true;
        else if (!strcasecmp(v, "none") || !strcasecmp(v, "session"))
            *(bool *)field = false;
        else
            return "is not a pooler mode (none or transaction)";
        return NULL;
    case T_MIGRATE:
        if (!strcasecmp(v, "auto"))
            *(bool *)field = true;
        else if (!strcasecmp(v, "off"))
            *(bool *)field = false;
        else
            return "is not a migrate mode (auto or off)";
        return NULL;
    case T_LEADER:
        if (!strcasecmp(v, "none") || !strcasecmp(v, "off"))
            *(int *)field = LEADER_NONE;
        else if (!strcasecmp(v, "redis"))
            *(int *)field = LEADER_REDIS;
        else if (!strcasecmp(v, "postgres") || !strcasecmp(v, "postgresql"))
            *(int *)field = LEADER_POSTGRES;
        else
            return "is not a leader backend (none, redis or postgres)";
        return NULL;
    case T_WORKER_MODE:
        if (!strcasecmp(v, "leader"))
            *(bool *)field = true;
        else if (!strcasecmp(v, "compete"))
            *(bool *)field = false;
        else
            return "is not a worker mode (compete or leader)";
        return NULL;
    case T_QUEUE_BACKEND: {
        /* Which names exist is the queue module's to say (backends.c,
         * checked when the modules resolve); here only their form. */
        if (!strcasecmp(v, "postgresql"))
            v = "postgres";
        size_t len = strlen(v);
        if (!len || len >= QUEUE_BACKEND_NAME_MAX ||
            strspn(v, "abcdefghijklmnopqrstuvwxyz"
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789_-") != len)
            return "is not a queue backend name (postgres or redis)";
        for (size_t i = 0; i <= len; i++)
            ((char *)field)[i] = (char)tolower((unsigned char)v[i]);
        return NULL;
    }
    case T_FORMAT:
        if (!strcasecmp(v, "json"))
            *(bool *)field = true;
        else if (!strcasecmp(v, "text"))
            *(bool *)field = false;
        else
            return "is not a log format (text or json)";
        return NULL;
    case T_INT:
    case T_UINT:
        if (!parse_i64(v, &n))
            return "is not an integer";
        break;
    case T_SIZE:
        n = config_parse_size(v);
        if (n < 0)
            return "is not a size (bytes, or with k/m/g)";
        break;
    case T_DUR:
        n = config_parse_duration_ms(v);
        if (n < 0)
            return "is not a duration (e.g. 500ms, 10s, 2m)";
        break;
    }
    if (n < o->min || n > o->max) {
        snprintf(why, whylen, "is out of range (%" PRId64 "..%" PRId64 ")", o->min, o->max);
        return why;
    }
    if (o->off == OFF(recv_bufs) && (n & (n - 1)))
        return "is not a power of two";
    switch (o->type) {
    case T_INT:
        *(int *)field = (int)n;
        break;
    case T_UINT:
        *(unsigned *)field = (unsigned)n;
        break;
    case T_SIZE:
        if (o->off == OFF(max_body))
            *(uint64_t *)field = (uint64_t)n;
        else
            *(unsigned *)field = (unsigned)n;
        break;
    default:
        *(uint64_t *)field = (uint64_t)n;
        break;
    }
    return NULL;
}

int config_load(struct config *c, int argc, char **argv, int first, FILE *err)
{
    memset(c, 0, sizeof(*c));
    char why[96];
    for (size_t i = 0; i < NOPTS; i++) {
        const char *bad = apply(c, &opts[i], opts[i].def, why, sizeof(why));
        if (bad) {
            fprintf(err, "trireme: internal default of --%s %s\n", opts[i].flag, bad);
            return 2;
        }
    }
    for (size_t i = 0; i < NALIASES; i++) {
        const char *v = getenv(aliases[i].env);
        if (!v || !*v)
            continue;
        const char *bad =
            apply(c, find_opt(aliases[i].flag, strlen(aliases[i].flag)), v, why, sizeof(why));
        if (bad) {
            fprintf(err, "trireme: %s=%s %s\n", aliases[i].env, v, bad);
            return 2;
        }
    }
    for (size_t i = 0; i < NOPTS; i++) {
        const char *v = opts[i].env ? getenv(opts[i].env) : NULL;
        if (!v || (!*v && opts[i].type != T_STR))
            continue;
        const char *bad = apply(c, &opts[i], v, why, sizeof(why));
        if (bad) {
            fprintf(err, "trireme: %s=%s %s\n", opts[i].env, v, bad);
            return 2;
        }
    }
    for (int a = first; a < argc; a++) {
        const char *arg = argv[a];
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(err, "trireme: unexpected argument '%s' (flags look like --port=8000)\n", arg);
            return 2;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct opt *o = find_opt(name, nlen);
        if (!o) {
            fprintf(err, "trireme: unknown flag --%.*s (see trireme run --help)\n", (int)nlen,
                    name);
            return 2;
        }
        const char *v;
        if (eq)
            v = eq + 1;
        else if (o->type == T_BOOL)
            v = "true";
        else if (a + 1 < argc)
            v = argv[++a];
        else {
            fprintf(err, "trireme: --%s needs a value\n", o->flag);
            return 2;
        }
        const char *bad = apply(c, o, v, why, sizeof(why));
        if (bad) {
            fprintf(err, "trireme: --%s=%s %s\n", o->flag, v, bad);
            return 2;
        }
    }
    strip_pgbouncer(c);
    if (!c->redis_enabled)
        c->redis_url[0] = 0;
    if (*c->redis_url) {
        struct redis_url u;
        const char *bad;
        if (redis_url_parse(c->redis_url, &u, &bad)) {
            fprintf(err, "trireme: REDIS_URL %s\n", bad);
            return 2;
        }
    }
    if (!*c->tls_cert != !*c->tls_key) {
        fprintf(err, "trireme: --tls-cert and --tls-key go together (one is missing)\n");
        return 2;
    }
    if (*c->kind_limits && !*c->redis_url) {
        fprintf(err, "trireme: --kind-limits needs REDIS_URL (limits are shared through Redis)\n");
        return 2;
    }
    if (*c->rate_limits && !*c->redis_url) {
        fprintf(err, "trireme: --rate-limits needs REDIS_URL (limits are shared through Redis)\n");
        return 2;
    }
    if (c->leader_backend == LEADER_REDIS && !*c->redis_url) {
        fprintf(err, "trireme: --leader=redis needs REDIS_URL\n");
        return 2;
    }
    if (c->leader_backend == LEADER_POSTGRES && !*c->database_url) {
        fprintf(err, "trireme: --leader=postgres needs DATABASE_URL\n");
        return 2;
    }
    if (c->worker_mode_leader && c->leader_backend == LEADER_NONE) {
        fprintf(err, "trireme: --worker-mode=leader needs --leader=redis or --leader=postgres\n");
        return 2;
    }
    if (!c->leader_renew_ms)
        c->leader_renew_ms = c->leader_ttl_ms / 3;
    if (c->leader_renew_ms * 2 > c->leader_ttl_ms) {
        fprintf(err, "trireme: --leader-renew must be at most half of --leader-ttl\n");
        return 2;
    }
    if (c->max_uri > c->max_head) {
        fprintf(err, "trireme: --max-uri-bytes=%u is larger than --max-header-bytes=%u\n",
                c->max_uri, c->max_head);
        return 2;
    }
    return 0;
}

void config_help(FILE *out)
{
    for (size_t i = 0; i < NOPTS; i++) {
        const struct opt *o = &opts[i];
        char left[64];
        if (o->flag)
            snprintf(left, sizeof(left), "--%s", o->flag);
        else
            snprintf(left, sizeof(left), "(env only)");
        fprintf(out, "  %-26s %-26s default: %s\n      %s\n", left, o->env ? o->env : "",
                *o->def ? o->def : "(none)", o->help);
        for (size_t k = 0; k < NALIASES; k++)
            if (o->flag && !strcmp(aliases[k].flag, o->flag))
                fprintf(out, "      Also read from %s (compatibility).\n", aliases[k].env);
    }
}
