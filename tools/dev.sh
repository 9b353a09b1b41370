#!/usr/bin/env bash
# tools/dev.sh - the README's first command: install, build, run every role.
#
# On a fresh Debian 12 machine, as root: installs the Debian packages and
# Zig, builds Trireme (ReleaseSafe) and runs every role built into it, in
# the foreground, on PORT (default 8000). Ctrl-C drains and exits.
# Extra arguments go to `trireme run` (e.g. tools/dev.sh --threads=1).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
python3 -m ziglang build -Doptimize=ReleaseSafe
export PORT="${PORT:-8000}" LOG_FORMAT="${LOG_FORMAT:-text}"
echo "trireme: serving on http://127.0.0.1:$PORT (try: curl http://127.0.0.1:$PORT/healthz)" >&2
exec zig-out/bin/trireme run "$@"
