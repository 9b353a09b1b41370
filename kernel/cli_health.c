/*
 * cli_health.c - `trireme health`: the container HEALTHCHECK without curl.
 *
 * A blocking one-shot HTTP/1.1 GET is right here: this is a short-lived
 * client process, not a loop. Exit 0 on 200, 1 on anything else, 2 on a
 * bad flag.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kernel/cli.h"
#include "kernel/config.h"

void cli_health_help(FILE *out)
{
    fprintf(out, "  --host=H        default 127.0.0.1\n"
                 "  --port=P        default $PORT, else 8000\n"
                 "  --path=/p       default /healthz\n"
                 "  --timeout=D     default 2s\n");
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* 0 once fd is ready for ev, -ETIMEDOUT at the deadline, or -errno. */
static int wait_fd(int fd, short ev, long long deadline)
{
    long long left = deadline - now_ms();
    if (left <= 0)
        return -ETIMEDOUT;
    struct pollfd p = {.fd = fd, .events = ev};
    int n = poll(&p, 1, (int)left);
    return n == 1 ? 0 : n == 0 ? -ETIMEDOUT : -errno;
}

int cli_health(int argc, char **argv, int first)
{
    const char *host = "127.0.0.1", *path = "/healthz";
    const char *port = getenv("PORT");
    if (!port || !*port)
        port = "8000";
    int64_t timeout = 2000;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "--host=", 7))
            host = a + 7;
        else if (!strncmp(a, "--port=", 7))
            port = a + 7;
        else if (!strncmp(a, "--path=", 7))
            path = a + 7;
        else if (!strncmp(a, "--timeout=", 10)) {
            timeout = config_parse_duration_ms(a + 10);
            if (timeout <= 0) {
                fprintf(stderr, "trireme health: --timeout=%s is not a duration\n", a + 10);
                return 2;
            }
        } else {
            fprintf(stderr, "trireme health: unknown flag %s\n", a);
            return 2;
        }
    }
    long long deadline = now_ms() + timeout;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, port, &hints, &res)) {
        fprintf(stderr, "trireme health: cannot resolve %s:%s\n", host, port);
        return 1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = fd < 0 ? -1 : connect(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rc < 0 && errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 0) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        rc = err ? -1 : 0;
    }
    if (rc < 0) {
        fprintf(stderr, "trireme health: cannot connect to %s:%s\n", host, port);
        if (fd >= 0)
            close(fd);
        return 1;
    }
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: trireme-health\r\n"
                     "Connection: close\r\n\r\n",
                     path, host);
    if (n <= 0 || n >= (int)sizeof(req) || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return 1;
    }
    char resp[512];
    size_t got = 0;
    while (got < sizeof(resp) - 1 && !memchr(resp, '\n', got)) {
        if (wait_fd(fd, POLLIN, deadline) < 0)
            break;
        ssize_t r = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    resp[got] = 0;
    int status = 0;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1) {
        fprintf(stderr, "trireme health: no HTTP answer from %s:%s%s\n", host, port, path);
        return 1;
    }
    if (status != 200) {
        fprintf(stderr, "trireme health: %s answered %d\n", path, status);
        return 1;
    }
    return 0;
}
