/*
 * fuzz_kinds_file.c - libFuzzer target for modules/kinds/kinds_file.c and
 * kind_exec_spec.c, the --kinds=FILE an operator writes (built by
 * tests/fuzz/run.sh against the instrumented kernel and modules libraries).
 *
 * Input: the file's bytes, given to kinds_file_load through a memfd.
 *
 * Checked, with abort() on any failure so libFuzzer records the input:
 *   - a refusal has a printable message that names the file, shorter than
 *     its buffer; nothing is left allocated (LeakSanitizer);
 *   - an accepted file declares at most KINDS_FILE_MAX kinds, each named
 *     within KINDS_NAME_MAX, none a built-in, no two alike, each exec kind
 *     with a program to run; declared, every kind is found by name, and a
 *     job of it passes job input validation.
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "modules/jobs/job_input.h"
#include "modules/kinds/kinds_file.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("kinds", MFD_CLOEXEC);
    CHECK(fd >= 0);
    CHECK(write(fd, data, size) == (ssize_t)size);
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    struct kinds_file f;
    char msg[700];
    msg[0] = 0;
    if (kinds_file_load(path, &f, msg, sizeof(msg))) {
        size_t n = strnlen(msg, sizeof(msg));
        CHECK(n > 0 && n < sizeof(msg));
        CHECK(strstr(msg, path) == msg);
        close(fd);
        return 0;
    }
    close(fd);
    CHECK(f.n <= KINDS_FILE_MAX);
    job_kinds_declare(&f);
    for (unsigned i = 0; i < f.n; i++) {
        const char *name = f.v[i].name;
        CHECK(strlen(name) >= 1 && strlen(name) <= KINDS_NAME_MAX);
        for (unsigned k = 0; k < i; k++)
            CHECK(strcmp(f.v[k].name, name));
        CHECK(job_kind_find(name, strlen(name)) == &f.v[i].kind);
        json_t *job = json_pack("{ss}", "kind", name);
        const char *field;
        char why[300];
        json_t *ok = job_input_normalize(job, &field, why, sizeof(why));
        CHECK(ok != NULL);
        json_decref(ok);
        json_decref(job);
    }
    job_kinds_declare(NULL);
    kinds_file_free(&f);
    return 0;
}
