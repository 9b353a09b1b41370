# Trireme container image: one binary, any role.
#
#   docker build -t trireme .
#   docker run -p 8000:8000 --security-opt seccomp=docs/deploy/seccomp.json trireme
#   docker run ... trireme run --roles=worker
#   docker run ... trireme run --roles=beat     # time zones from the image's tzdata
#
# io_uring: Docker's default seccomp profile (since 25.0) refuses the
# io_uring syscalls; docs/deploy/seccomp.json allows them and keeps the rest
# of a container's restrictions. Without them trireme exits at start with
# "cannot set up io_uring". More recipes: docs/deploy/.

FROM debian:12 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip ca-certificates \
        liburing-dev libjansson-dev libpq-dev libhiredis-dev libbearssl-dev libc-ares-dev pkg-config \
 && python3 -m pip install --break-system-packages --no-cache-dir ziglang==0.14.1 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# baseline CPU: the image must run on any x86-64 host, not just the builder's.
RUN python3 -m ziglang build -Doptimize=ReleaseSafe -Dcpu=baseline --prefix /out

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends liburing2 libjansson4 libpq5 libhiredis0.14 \
        libbearssl0 libc-ares2 ca-certificates \
        tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin trireme
COPY --from=build /out/bin/trireme /usr/local/bin/trireme
USER trireme
ENV PORT=8000 HOST=0.0.0.0 LOG_FORMAT=json
EXPOSE 8000
# The image has no curl: trireme probes its own /healthz (exit 0 or 1).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["trireme", "health"]
ENTRYPOINT ["trireme"]
CMD ["run"]
