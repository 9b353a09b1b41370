/*
 * job_input.h - validating a job as an API client or the CLI describes it.
 *
 * Input fields: kind (required, a registered kind), queue, payload (any
 * JSON), run_at (RFC 3339) or delay (seconds, or "10s"/"500ms"), priority,
 * max_attempts, timeout (seconds or a duration), unique_key. The output is
 * the normalized object SQL_ENQUEUE_BATCH expects, so one bad job can
 * never make a shared batch statement fail.
 */
#ifndef TRIREME_MODULES_JOBS_JOB_INPUT_H
#define TRIREME_MODULES_JOBS_JOB_INPUT_H

#include <jansson.h>
#include <stddef.h>

#define JOB_NAME_MAX     200 /* kind, queue, unique_key */
#define JOB_MAX_ATTEMPTS 1000
#define JOB_BATCH_MAX    1000                    /* jobs per POST /v1/jobs */
#define JOB_DELAY_MAX_MS (3653LL * 86400 * 1000) /* delay: 10 years */

/* Returns a new normalized object, or NULL with field/message set. *field
 * is a static string or, for an unknown field, that key inside `in`: use
 * it before releasing `in`. */
json_t *job_input_normalize(json_t *in, const char **field, char *msg, size_t cap);

#endif
