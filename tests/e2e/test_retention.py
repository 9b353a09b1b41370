"""
test_retention.py - old rows go: finished jobs (succeeded after 7 days, dead
after 30, cancelled after 7 by default; --retention-* names them, 0 keeps)
are deleted by the worker in batches, and beat's record of fired slots after
30 days, each schedule's latest slot kept. What is not finished, or not old
enough, stays. Rows are made old with SQL, in creation order (ids grow with
creation, as they do when jobs are enqueued).
"""
import time

import pytest

pytest.register_assert_rewrite("pgtools")
pytest.register_assert_rewrite("beattools")
from beattools import add_schedule, beat_db  # noqa: E402,F401
from pgtools import wait_until, wait_worker_ready  # noqa: E402

pytest_plugins = ["pgtools"]

FAST = "--retention-interval=200ms"


def add_jobs(db, n, status, finished_days_ago, created_days_ago, kind="noop"):
    """n jobs in one status, finished (NULL for unfinished) and created that many days ago."""
    fin = "NULL" if finished_days_ago is None else f"now() - interval '{finished_days_ago} days'"
    db.exec(f"INSERT INTO trireme.jobs (kind, status, finished_at, created_at, run_at) "
            f"SELECT '{kind}', '{status}', {fin}, now() - interval '{created_days_ago} days', "
            f"now() - interval '{created_days_ago} days' FROM generate_series(1, {n})")


def counts(db):
    return {r["status"]: r["n"] for r in db.rows(
        "SELECT status || ':' || (now() - finished_at > interval '1 day' * 7.5)::text AS status, "
        "count(*)::int AS n FROM trireme.jobs GROUP BY 1")}


def test_default_periods_delete_old_finished_jobs_and_keep_the_rest(trireme, db):
    add_jobs(db, 700, "dead", 31, 32)          # past 30 days: deleted
    add_jobs(db, 700, "succeeded", 8, 9)       # past 7 days: deleted
    add_jobs(db, 700, "dead", 8, 9)            # dead, but 8 < 30 days: kept
    add_jobs(db, 700, "cancelled", 8, 9)       # past 7 days: deleted
    add_jobs(db, 300, "pending", None, 9, kind="e2e_nobody_runs_this")  # unfinished: kept
    add_jobs(db, 700, "succeeded", 6, 6.1)     # 6 < 7 days: kept
    # A dead job retried since: pending again, its old finished_at must not count.
    db.exec("UPDATE trireme.jobs SET status = 'pending' WHERE id = "
            "(SELECT min(id) FROM trireme.jobs WHERE status = 'dead')")
    srv = trireme("--roles=worker", FAST, "--queues=e2e_none", threads=1, env=db.env())
    wait_worker_ready(srv, 1)
    wait_until(lambda: db.count("status = 'cancelled'") == 0, 20, what="old cancelled jobs deleted")
    wait_until(lambda: db.count("status = 'succeeded' AND finished_at < now() - interval '7 days'")
               == 0 and db.count("status = 'dead' AND finished_at < now() - interval '30 days'")
               == 0, 20, what="old succeeded and dead jobs deleted")
    assert db.count("status = 'dead'") == 700
    assert db.count("status = 'succeeded'") == 700
    assert db.count("status = 'pending'") == 301
    srv.wait_log(r"retention: old rows deleted table=jobs status=succeeded", timeout=5)
    srv.check_clean_output()


def test_zero_keeps_and_small_batches_reach_every_row(trireme, db):
    add_jobs(db, 1050, "succeeded", 9, 10)
    add_jobs(db, 50, "dead", 40, 10)
    srv = trireme("--roles=worker", FAST, "--queues=e2e_none", "--retention-batch=100",
                  "--retention-dead=0", threads=1, env=db.env())
    wait_worker_ready(srv, 1)
    wait_until(lambda: db.count("status = 'succeeded'") == 0, 30, what="1,050 rows in batches of 100")
    batches = srv.wait_log(r"retention: old rows deleted table=jobs status=succeeded rows=100",
                           timeout=5, count=10)
    assert len(batches) >= 10
    time.sleep(1.0)  # several more passes
    assert db.count("status = 'dead'") == 50, "--retention-dead=0 keeps dead jobs"
    srv.check_clean_output()


def test_two_workers_delete_each_row_once_without_errors(trireme, db):
    add_jobs(db, 3000, "succeeded", 9, 10)
    a = trireme("--roles=worker", FAST, "--queues=e2e_none", "--retention-batch=200", threads=1,
                env=db.env())
    b = trireme("--roles=worker", FAST, "--queues=e2e_none", "--retention-batch=200", threads=1,
                env=db.env())
    wait_worker_ready(a, 1)
    wait_worker_ready(b, 1)
    wait_until(lambda: db.count() == 0, 30, what="every old row deleted")
    for s in (a, b):
        assert "deleting old rows failed" not in s.log
        s.check_clean_output()


def test_beat_deletes_old_fired_slots_but_each_schedules_latest(trireme, beat_db):
    db = beat_db
    sid = add_schedule(db, "e2e-retention", "0 0 1 1 *", enabled=False)
    # 60 old slots (41..100 days), the latest slot itself (40 days: kept however old);
    # last_fire is read back from that slot, not from a second now() that may be a
    # second later.
    db.exec(f"INSERT INTO trireme.schedule_fires (schedule_id, slot, reason) "
            f"SELECT {sid}, date_trunc('second', now()) - interval '1 day' * d, 'due' "
            f"FROM generate_series(40, 100) d")
    db.exec(f"UPDATE trireme.schedules SET last_fire = (SELECT max(slot) FROM "
            f"trireme.schedule_fires WHERE schedule_id = {sid}) WHERE id = {sid}")
    other = add_schedule(db, "e2e-retention-recent", "0 0 1 1 *", enabled=False)
    db.exec(f"UPDATE trireme.schedules SET last_fire = now() WHERE id = {other}")
    db.exec(f"INSERT INTO trireme.schedule_fires (schedule_id, slot, reason) "
            f"SELECT {other}, now() - interval '1 day' * d, 'due' FROM generate_series(1, 20) d")
    srv = trireme("--roles=beat", FAST, "--retention-batch=25", threads=1, env=db.env())
    wait_until(lambda: int(db.scalar(f"SELECT count(*) FROM trireme.schedule_fires "
                                     f"WHERE schedule_id = {sid}")) == 1, 30,
               what="old fired slots deleted")
    left = db.rows(f"SELECT (slot = s.last_fire) AS latest FROM trireme.schedule_fires f "
                   f"JOIN trireme.schedules s ON s.id = f.schedule_id WHERE s.id = {sid}")
    assert left == [{"latest": True}]
    assert int(db.scalar(f"SELECT count(*) FROM trireme.schedule_fires WHERE schedule_id = {other}")) == 20
    srv.wait_log(r"retention: old rows deleted table=schedule_fires", timeout=5)
    srv.check_clean_output()


def test_days_are_a_duration_unit_and_bad_periods_are_refused(trireme, db):
    from conftest import run_cli
    bad = run_cli("run", "--roles=worker", "--retention-dead=soon", env=db.env())
    assert bad.returncode == 2 and "--retention-dead" in bad.stderr
    srv = trireme("--roles=worker", "--retention-succeeded=2d", "--queues=e2e_none", threads=1,
                  env=db.env())
    wait_worker_ready(srv, 1)
    srv.check_clean_output()


def test_upload_files_never_attached_to_a_job_are_deleted(trireme, db):
    """Files an upload wrote before its server stopped stay unattached
    (job_id NULL): deleted, chunks too, after --retention-upload-orphans;
    recent ones (an upload still running) and attached ones stay."""
    def add_file(job_id, hours_ago):
        jid = "NULL" if job_id is None else f"'{job_id}'"
        fid = db.scalar(f"INSERT INTO trireme.job_files (job_id, name, created_at) VALUES "
                        f"({jid}, 'f{time.monotonic_ns()}', now() - interval '{hours_ago} hours') "
                        "RETURNING id")
        db.exec(f"INSERT INTO trireme.job_file_chunks (file_id, seq, data) "
                f"VALUES ({fid}, 0, '\\x00'::bytea), ({fid}, 1, '\\x01'::bytea)")
        return int(fid)
    old = [add_file(None, 3) for _ in range(5)]
    recent = add_file(None, 0.1)
    attached = add_file("424242", 3)
    srv = trireme("--roles=worker", FAST, "--retention-upload-orphans=1h", "--queues=e2e_none",
                  threads=1, env=db.env())
    wait_worker_ready(srv, 1)
    ids = ",".join(str(i) for i in old)
    wait_until(lambda: int(db.scalar(f"SELECT count(*) FROM trireme.job_files WHERE id IN ({ids})"))
               == 0, 20, what="orphaned upload files deleted")
    assert int(db.scalar(f"SELECT count(*) FROM trireme.job_file_chunks WHERE file_id IN ({ids})")) == 0
    left = {int(r) for r in db.scalar(
        f"SELECT string_agg(id::text, ',') FROM trireme.job_files WHERE id IN ({recent}, {attached})"
    ).split(",")}
    assert left == {recent, attached}
    srv.wait_log(r"retention: old rows deleted table=job_files", timeout=5)
    srv.check_clean_output()
