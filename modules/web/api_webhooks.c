/*
 * api_webhooks.c - /v1/webhooks/{source}: inbound webhooks from the
 * sources declared under "webhooks" in --kinds (modules/webhooks/).
 *
 * These routes take no API key: the provider proves itself by signing the
 * body with the source's secret. A verified delivery becomes one job of
 * the source's kind whose unique key is the provider's delivery id, so a
 * redelivery finds the stored job and gets the same 200 and id. Refusals
 * are logged with the request id and source, never the secret.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernel/log.h"
#include "kernel/server.h"
#include "modules/jobs/job_input.h"
#include "modules/kinds/kinds_file.h"
#include "modules/registry.h"
#include "modules/web/api_jobs.h"
#include "modules/web/web.h"
#include "proto/base64.h"
#include "proto/utf8.h"

#define WEBHOOK_DELIVERY_ID_MAX                                                                    \
    120 /* bytes of a delivery id: "webhook:" + source + ":" + id fits JOB_NAME_MAX */
#define WEBHOOK_QUERY_MAX 256 /* hub.verify_token, hub.challenge */

static const struct webhook_source *source_of(struct web_request *r)
{
    size_t n;
    const char *name = web_param(r, "source", &n);
    const struct kinds_file *f = r->loop->srv->module_state[MODULE_KINDS];
    const struct webhook_source *s = f ? webhook_source_find(&f->webhooks, name, n) : NULL;
    if (!s) {
        LOG(LOG_INFO, "webhook refused: unknown source", L_STRN("source", name, n),
            L_STRN("request_id", r->id, r->id_len));
        web_respond_error(r, 404, "unknown_source", "no webhook source of that name is declared");
    }
    return s;
}

static const char *header(void *ctx, const char *name, size_t *len)
{
    const struct http1_header *h = http1_find_header(((struct web_request *)ctx)->http, name);
    if (!h)
        return NULL;
    *len = h->value_len;
    return h->value;
}

static void refuse(struct web_request *r, const struct webhook_source *s, int status,
                   const char *code, const char *why)
{
    LOG(LOG_WARN, "webhook refused", L_STR("source", s->name), L_INT("status", status),
        L_STR("reason", why), L_STRN("request_id", r->id, r->id_len));
    web_respond_error(r, status, code, why);
}

static void on_answer(struct queue_call *c, const struct queue_answer *ans)
{
    struct web_request *r = c->data;
    r->on_abort = NULL;
    if (ans->status < 300) {
        /* 200 whether created or found by its delivery id: the provider
         * only needs to hear that the delivery is safe. */
        web_respond_json(r, 200, ans->body, ans->len);
        return;
    }
    api_respond_failed(r, ans);
}

/* The delivery id, from its header or a top-level string of the JSON body;
 * NULL when the source names none or the delivery lacks it. */
static const char *delivery_id(struct web_request *r, const struct webhook_source *s,
                               json_t *payload, size_t *n)
{
    if (s->id_header)
        return header(r, s->id_header, n);
    json_t *v = s->id_field ? json_object_get(payload, s->id_field) : NULL;
    if (!json_is_string(v))
        return NULL;
    *n = json_string_length(v);
    return json_string_value(v);
}

void api_webhook_post(struct web_request *r)
{
    const struct webhook_source *s = source_of(r);
    if (!s)
        return;
    const char *why = NULL;
    struct webhook_delivery d = {header, r, r->body ? r->body : "", r->body_len,
                                 (int64_t)time(NULL)};
    if (webhook_verify(s, &d, &why) != WEBHOOK_OK) {
        refuse(r, s, 401, "invalid_signature", why);
        return;
    }
    /* A JSON body is the payload as is; any other UTF-8 body is stored as
     * one JSON string (form-encoded providers); other bytes are refused. */
    json_t *payload =
        json_loadb(d.body, d.body_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (!payload) {
        if (!utf8_valid(d.body, d.body_len)) {
            refuse(r, s, 400, "invalid_body", "body is neither JSON nor UTF-8 text");
            return;
        }
        payload = json_stringn(d.body, d.body_len);
    }
    json_t *job = json_pack("{s:s, s:o}", "kind", s->kind, "payload", payload);
    if (s->queue)
        json_object_set_new(job, "queue", json_string(s->queue));
    size_t idn = 0;
    const char *id = delivery_id(r, s, payload, &idn);
    if (id) {
        if (idn == 0 || idn > WEBHOOK_DELIVERY_ID_MAX || !utf8_valid(id, idn)) {
            json_decref(job);
            refuse(r, s, 400, "invalid_delivery_id", "delivery id empty, not UTF-8 or too long");
            return;
        }
        char key[JOB_NAME_MAX + 1];
        snprintf(key, sizeof(key), "webhook:%s:%.*s", s->name, (int)idn, id);
        json_object_set_new(job, "unique_key", json_string(key));
    }
    const char *field = NULL;
    char msg[300];
    json_t *norm = job_input_normalize(job, &field, msg, sizeof(msg));
    json_decref(job);
    if (!norm) {
        /* The source's own declaration (a kind no longer registered). */
        LOG(LOG_ERROR, "webhook: job refused", L_STR("source", s->name), L_STR("field", field),
            L_STR("error", msg), L_STRN("request_id", r->id, r->id_len));
        web_respond_error(r, 500, "internal", "the source's job is not valid");
        return;
    }
    json_t *jobs = json_array();
    json_array_append_new(jobs, norm);
    api_jobs_submit(r, jobs, on_answer);
}

/* GET /v1/webhooks: the declared sources as a dashboard shows them (what
 * each enqueues, how it is verified), never a secret or a verify token. */
void api_webhook_list(struct web_request *r)
{
    if (!web_authorized(r))
        return;
    const struct kinds_file *f = r->loop->srv->module_state[MODULE_KINDS];
    json_t *list = json_array();
    for (unsigned i = 0; f && i < f->webhooks.n; i++) {
        const struct webhook_source *s = &f->webhooks.v[i];
        char url[300];
        snprintf(url, sizeof(url), "/v1/webhooks/%s", s->name);
        const char *id = s->id_header ? s->id_header : s->id_field;
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:s, s:s?, s:I, s:s?, s:s?, s:b}", "name", s->name, "url",
                            url, "kind", s->kind, "queue", s->queue, "tolerance_s",
                            (json_int_t)s->tolerance_s, "scheme", webhook_scheme_name(s->scheme),
                            "delivery_id", id, "handshake", s->verify_token != NULL));
    }
    json_t *out = json_pack("{s:o}", "sources", list);
    char *body = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(out);
    web_respond_json(r, 200, body, strlen(body));
    free(body);
}

/* Meta's subscription handshake: echo hub.challenge when hub.mode is
 * subscribe and hub.verify_token is the source's token. */
void api_webhook_handshake(struct web_request *r)
{
    const struct webhook_source *s = source_of(r);
    if (!s)
        return;
    char mode[32], token[WEBHOOK_QUERY_MAX], challenge[WEBHOOK_QUERY_MAX];
    if (!s->verify_token) {
        refuse(r, s, 403, "forbidden", "this source declares no verify token");
        return;
    }
    size_t tl = strlen(s->verify_token);
    if (web_query(r, "hub.mode", mode, sizeof(mode)) != 1 || strcmp(mode, "subscribe") ||
        web_query(r, "hub.verify_token", token, sizeof(token)) != 1 ||
        web_query(r, "hub.challenge", challenge, sizeof(challenge)) != 1 || strlen(token) != tl ||
        !ct_equal(token, s->verify_token, tl)) {
        refuse(r, s, 403, "forbidden",
               "hub.mode=subscribe, the source's hub.verify_token and hub.challenge are required");
        return;
    }
    web_respond(r, 200, "text/plain", challenge, strlen(challenge), NULL);
}
