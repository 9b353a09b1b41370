#!/usr/bin/env bash
# tools/deps.sh - install what building and testing Trireme needs on Debian 12.
#
#   tools/deps.sh          build + run dependencies
#   tools/deps.sh dev      also a local PostgreSQL server (tools/dev.sh)
#   tools/deps.sh test     also the test tools (cmocka, clang for ASan/libFuzzer, pytest, PostgreSQL, PgBouncer)
#   tools/deps.sh bench    also the benchmark peers (nginx, wrk, Celery, requests, psycopg2)
#
# Idempotent and quiet when everything is present. Needs root for apt-get
# (the README's commands run as root on a fresh machine).
set -euo pipefail

ZIG_VERSION=0.14.1

build_pkgs=(liburing-dev libjansson-dev libpq-dev libhiredis-dev libbearssl-dev libc-ares-dev pkg-config ca-certificates tzdata)
dev_pkgs=(postgresql postgresql-client redis-server)
test_pkgs=(systemd libcmocka-dev clang-14 libclang-rt-14-dev curl openssl postgresql postgresql-client pgbouncer redis-server python3-psycopg prometheus python3-prometheus-client chromium chromium-driver)
bench_pkgs=(nginx-light wrk python3-celery python3-redis python3-psycopg2 python3-requests)

want=("${build_pkgs[@]}")
case "${1:-}" in
dev) want+=("${dev_pkgs[@]}") ;;
test) want+=("${test_pkgs[@]}") ;;
bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
esac

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

py=python3
if ! $py -m ziglang version 2>/dev/null | grep -qx "$ZIG_VERSION"; then
    echo "deps: installing ziglang==$ZIG_VERSION from PyPI" >&2
    $py -m pip install -q --root-user-action=ignore "ziglang==$ZIG_VERSION"
fi
if [ "${1:-}" = test ] || [ "${1:-}" = bench ]; then
    $py -c 'import pytest' 2>/dev/null || $py -m pip install -q --root-user-action=ignore "pytest>=7"
    # the reference Standard Webhooks verifier (tests/e2e/test_http_kinds.py)
    $py -c 'import standardwebhooks' 2>/dev/null ||
        $py -m pip install -q --root-user-action=ignore standardwebhooks || true
    # test_deploy.py: YAML recipes, and libseccomp (Debian's libseccomp2) from Python
    $py -c 'import yaml, pyseccomp' 2>/dev/null ||
        $py -m pip install -q --root-user-action=ignore pyyaml pyseccomp
    # test_jwt.py: tokens made with PyJWT, RSA/EC keys with cryptography
    $py -c 'import jwt, cryptography' 2>/dev/null ||
        $py -m pip install -q --root-user-action=ignore "pyjwt[crypto]>=2.6"
    # test_cors.py: drives Debian's chromium through chromedriver
    $py -c 'import selenium' 2>/dev/null || $py -m pip install -q --root-user-action=ignore selenium
    # test_openapi.py: the document's validity, answers against its schemas
    # (date-time formats need rfc3339-validator), and a bounded fuzz run
    $py -c 'import jsonschema, openapi_spec_validator, rfc3339_validator, schemathesis' \
        2>/dev/null || $py -m pip install -q --root-user-action=ignore "jsonschema>=4.18" \
        "openapi-spec-validator==0.9.0" "rfc3339-validator==0.1.4" "schemathesis==4.32.5"
fi
