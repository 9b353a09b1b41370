#!/bin/sh
# bench/events/trigger_cost.sh - what migration 012's change-feed trigger
# costs a write of trireme.jobs, measured in PostgreSQL alone (one session,
# no Trireme process): the same statements with no trigger, with the
# trigger while nobody listens, and while a listener's lease runs.
#
#   DATABASE_URL=postgresql://... sh bench/events/trigger_cost.sh
#
# It creates a scratch database next to DATABASE_URL's (evbench_<pid>),
# applies the migrations with zig-out/bin/trireme, and drops it at the end.
# Statements, each timed by psql (\timing), ROWS jobs in all:
#   insert1   ROWS single-row INSERTs (one statement per job: the worst case
#             for a per-statement cost)
#   update100 UPDATE of 100 jobs per statement (as a batched claim or
#             finish does), ROWS jobs
#   update1   ROWS single-row UPDATEs (progress-style)
# Each case runs ROUNDS times; the report is the median per case.
# Knobs: ROWS=20000 ROUNDS=3.
set -eu
: "${DATABASE_URL:?set DATABASE_URL}"
ROWS=${ROWS:-20000}
ROUNDS=${ROUNDS:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DB=evbench_$$
BASE=${DATABASE_URL%/*}
URL=$BASE/$DB
psql -X -q "$DATABASE_URL" -c "CREATE DATABASE $DB"
trap 'psql -X -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1' EXIT
DATABASE_URL=$URL "$ROOT/zig-out/bin/trireme" migrate >/dev/null 2>&1

# One case: $1 label. Prints the label and each group's milliseconds.
run_case() {
    psql -X -q "$URL" <<SQL | awk -v l="$1" '/^Time:/ { t[++n] = $2 } END { printf "%s insert1 %.1f update100 %.1f update1 %.1f\n", l, t[1], t[2], t[3] }'
TRUNCATE trireme.jobs, trireme.job_changes;
\\timing on
DO \$\$ BEGIN FOR i IN 1..$ROWS LOOP
  INSERT INTO trireme.jobs (queue, kind, payload) VALUES ('q', 'k', '{}');
END LOOP; END \$\$;
\\timing off
CREATE TEMP TABLE ids AS SELECT array_agg(id ORDER BY id) a FROM trireme.jobs;
\\timing on
DO \$\$ DECLARE a bigint[] := (SELECT a FROM ids); BEGIN
  FOR i IN 0..($ROWS / 100 - 1) LOOP
    UPDATE trireme.jobs SET status = 'running', updated_at = now() WHERE id = ANY (a[i * 100 + 1 : i * 100 + 100]);
  END LOOP; END \$\$;
\\timing off
\\timing on
DO \$\$ DECLARE a bigint[] := (SELECT a FROM ids); BEGIN
  FOR i IN 1..$ROWS LOOP
    UPDATE trireme.jobs SET progress_percent = 50, updated_at = now() WHERE id = a[i];
  END LOOP; END \$\$;
SQL
}

listen_off() { psql -X -q "$URL" -c "DELETE FROM trireme.events_listen"; }
listen_on() {
    psql -X -q "$URL" -c "INSERT INTO trireme.events_listen VALUES (1, now() + interval '1 hour', now()) ON CONFLICT (k) DO UPDATE SET until = EXCLUDED.until"
}
no_trigger() { psql -X -q "$URL" -c "DROP TRIGGER IF EXISTS job_changes ON trireme.jobs"; }
trigger() {
    psql -X -q "$URL" -c "CREATE TRIGGER job_changes AFTER INSERT OR UPDATE ON trireme.jobs FOR EACH ROW WHEN (trireme.events_listening()) EXECUTE FUNCTION trireme.job_changed()"
}

OUT=$(mktemp)
r=1
while [ $r -le "$ROUNDS" ]; do
    no_trigger; listen_off; run_case none >>"$OUT"
    trigger; listen_off; run_case off >>"$OUT"
    listen_on; run_case on >>"$OUT"
    r=$((r + 1))
done
listen_off
echo "rows=$ROWS rounds=$ROUNDS (ms per case; median of rounds, and all rounds)"
for c in none off on; do
    grep "^$c " "$OUT" | awk -v c="$c" '
        { i1[NR] = $3; u100[NR] = $5; u1[NR] = $7 }
        function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t } return a[int((n + 1) / 2)] }
        END { n = NR; s1 = ""; s2 = ""; s3 = ""; for (i = 1; i <= n; i++) { s1 = s1 " " i1[i]; s2 = s2 " " u100[i]; s3 = s3 " " u1[i] }
              printf "%-5s insert1 %8.1f (%s)  update100 %8.1f (%s)  update1 %8.1f (%s)\n", c, med(i1, n), s1, med(u100, n), s2, med(u1, n), s3 }'
done
rm -f "$OUT"
