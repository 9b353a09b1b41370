/*
 * api_pull.h - POST /v1/claim and the job callbacks (api_pull.c): the pull
 * backend's state on a web loop.
 */
#ifndef TRIREME_MODULES_WEB_API_PULL_H
#define TRIREME_MODULES_WEB_API_PULL_H

struct web_loop;

/* At web start, after api_jobs_open (wl->pull). */
void api_pull_open(struct web_loop *wl);
/* The loop drains: waiting claims are answered 204, the backend's own
 * connections close. */
void api_pull_stop(struct web_loop *wl);
/* At cleanup, after the loop ended. */
void api_pull_close(struct web_loop *wl);

#endif
