/*
 * kind_noop.c - `noop`: succeeds at once. The benchmark's job, and the
 * cheapest way to see the queue itself work.
 */
#include "modules/kinds/job.h"
#include "modules/kinds/kind.h"

static void noop_start(struct job_run *r)
{
    job_finish(r, NULL, NULL, false);
}

const struct job_kind kind_noop = {
    .name = "noop",
    .summary = "does nothing and succeeds (benchmarks)",
    .start = noop_start,
};
