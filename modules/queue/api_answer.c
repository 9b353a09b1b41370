/*
 * api_answer.c - the answers every queue backend's API part gives the same
 * way (queue_api.h): the enqueue body, 409, and the store failures with
 * their codes and wording.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules/queue/queue_api.h"

void queue_enqueued_begin(struct queue_enqueued *e, bool array, struct metrics *m,
                          const json_t *jobs, size_t first)
{
    *e = (struct queue_enqueued){.array = array, .m = m, .jobs = jobs, .first = first};
    e->f = open_memstream(&e->out, &e->len);
    if (array)
        fputs("{\"jobs\":[", e->f);
}

void queue_enqueued_add(struct queue_enqueued *e, const char *id, bool created)
{
    const json_t *j = e->jobs ? json_array_get(e->jobs, e->first + e->n) : NULL;
    fprintf(e->f, "%s{\"id\":%s,\"status\":\"pending\",\"created\":%s}", e->n++ ? "," : "", id,
            created ? "true" : "false");
    e->any_created |= created;
    const char *kind = json_string_value(json_object_get(j, "kind"));
    if (created && e->m && kind) {
        const char *queue = json_string_value(json_object_get(j, "queue"));
        if (!queue)
            queue = "default"; /* what the store fills in */
        metrics_add(&metrics_job(e->m, queue, strlen(queue), kind, strlen(kind))->n[MJ_ENQUEUED],
                    1);
    }
}

void queue_enqueued_answer(struct queue_enqueued *e, struct queue_call *c)
{
    if (e->array)
        fputs("]}", e->f);
    fclose(e->f);
    queue_call_answer(c, &(struct queue_answer){
                             .status = e->any_created ? 201 : 200, .body = e->out, .len = e->len});
    free(e->out);
}

const char *const queue_statuses[QUEUE_NSTATUS] = {"pending", "running", "succeeded",
                                                   "failed",  "dead",    "cancelled"};

void queue_answer_counts(struct queue_call *c, const struct queue_count *q, unsigned n,
                         unsigned capped)
{
    json_t *qs = json_array(), *caps = json_array();
    for (unsigned i = 0; i < n; i++) {
        json_t *o = json_pack("{s:s}", "queue", q[i].queue);
        for (unsigned s = 0; s < QUEUE_NSTATUS; s++)
            if (q[i].n[s] >= 0)
                json_object_set_new(o, queue_statuses[s], json_integer(q[i].n[s]));
        json_array_append_new(qs, o);
    }
    for (unsigned s = 0; s < QUEUE_NSTATUS; s++)
        if (capped & (1u << s))
            json_array_append_new(caps, json_string(queue_statuses[s]));
    json_t *all = json_pack("{s:o, s:o}", "queues", qs, "capped", caps);
    char *body = json_dumps(all, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(all);
    queue_answer_json(c, body, strlen(body));
    free(body);
}

void queue_answer_json(struct queue_call *c, const char *body, size_t len)
{
    queue_call_answer(c, &(struct queue_answer){.status = 200, .body = body, .len = len});
}

void queue_answer_not_found(struct queue_call *c, const char *message)
{
    queue_call_answer(
        c, &(struct queue_answer){.status = 404, .code = "not_found", .message = message});
}

void queue_answer_refused(struct queue_call *c, bool cancel)
{
    queue_call_answer(c,
                      &(struct queue_answer){
                          .status = 409,
                          .code = "conflict",
                          .message = cancel ? "only pending or running jobs can be cancelled"
                                            : "only dead, failed or cancelled jobs can be retried",
                      });
}

void queue_answer_failed(struct queue_call *c, enum queue_fault f, const char *store,
                         const char *err)
{
    char msg[160];
    struct queue_answer a = {.message = msg, .detail = err};
    switch (f) {
    case QUEUE_UNAVAILABLE:
        a.status = 503;
        a.code = "unavailable";
        snprintf(msg, sizeof(msg), "the job store (%s) is unavailable; retry later", store);
        break;
    case QUEUE_REJECTED:
        a.status = 400;
        a.code = "rejected";
        snprintf(msg, sizeof(msg),
                 "the job store (%s) refused a value of this request (logged with its request_id)",
                 store);
        break;
    default:
        a.status = 500;
        a.code = "internal";
        snprintf(msg, sizeof(msg), "the job store (%s) call failed (logged with this request_id)",
                 store);
        break;
    }
    queue_call_answer(c, &a);
}
