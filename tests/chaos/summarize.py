"""
summarize.py - the Markdown table of a chaos run: reads the JSON lines
conftest.py appends to $CHAOS_RESULTS (one per scenario run) and prints one
row per scenario: runs, jobs, lost, duplicated (with the in-flight bound),
sql effects applied twice, recovery p50/max.

    python3 tests/chaos/summarize.py results.jsonl
"""
import json
import statistics
import sys


def main(path: str):
    by: dict[str, list[dict]] = {}
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            by.setdefault(r["scenario"], []).append(r)
    print("| scenario | runs | jobs | lost | duplicated (bound) | sql effects twice "
          "| recovery p50 / max |")
    print("|---|---|---|---|---|---|---|")
    for name, rs in by.items():
        rec = [r["recovery_s"] for r in rs]
        print(f"| {name} | {len(rs)} | {sum(r['jobs'] for r in rs)} | "
              f"{sum(r['lost'] for r in rs)} | {sum(r['duplicated'] for r in rs)} "
              f"({sum(r['dup_bound'] for r in rs)}) | {sum(r['sql_dup'] for r in rs)} | "
              f"{statistics.median(rec):.2f} s / {max(rec):.2f} s |")


if __name__ == "__main__":
    main(sys.argv[1])
