"""
test_ui.py - the dashboard at /ui (modules/web/ui.c, modules/web/ui/*),
driven in real headless Chromium against the real binary on PostgreSQL:

- the files are served without a credential, with their Content-Type,
  ETag (304 on If-None-Match), no-cache, the strict Content-Security-Policy
  and nosniff; an unknown file is a JSON 404; the page loads with no
  console error, and the policy is enforced (an inline script is refused);
- sign-in with an API key; the jobs list shows enqueued jobs, filters by
  status and pages forward with next_cursor;
- the jobs list's first page follows GET /v1/events: a job created after
  the page loaded appears on top, and its row moves to running and
  succeeded, without a reload;
- a job's progress bar moves live while a pull worker reports progress;
- a dead job is retried from its page, then cancelled;
- a schedule is disabled from the schedules page;
- a read-only key (jobs:read) sees no action button;
- a wrong API key (403) and a refused JWT (401) show the server's message;
- the overview shows counts from GET /v1/queues, or says they are not
  available where that endpoint answers 404; a job that does not exist
  shows the API's 404.

Each test saves a screenshot of the page as it ends into its pytest tmp
dir (<test name>.png). Every wait is bounded.
"""
from __future__ import annotations

import json
import re
import shutil
import time
import uuid

import jwt
import pytest

pytest.register_assert_rewrite("pgtools")
from pgtools import API_KEY, http, wait_until  # noqa: E402

pytest_plugins = ["pgtools", "beattools"]

RO_KEY = "e2e-ui-readonly-key"
JWT_SECRET = "ui-test-jwt-secret-" + "0123456789abcdef" * 3
PULL_KIND = "ui_pull"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
RFC3339 = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"
WAIT = 15.0  # seconds for anything the page must show


@pytest.fixture
def srv(trireme, beat_db):
    """web + beat (it fires the schedules) + a pull kind; the full key, a
    read-only key and JWTs accepted."""
    s = trireme("--roles=web,beat", f"--pull-kinds={PULL_KIND}",
                env=beat_db.env(TRIREME_API_KEYS=f"{API_KEY},{RO_KEY}:jobs:read",
                           JWT_SECRET=JWT_SECRET))
    s.wait_log(r"database connected")
    s.wait_log(r"beat: schedules loaded", timeout=15)
    s.base = f"http://127.0.0.1:{s.port}"
    return s


@pytest.fixture
def browser(request, tmp_path):
    """Headless Chromium (as test_cors.py starts it), its console log kept;
    a screenshot of the last page is saved into tmp_path at teardown."""
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        pytest.skip("chromium/chromium-driver not installed (tools/deps.sh test)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1280,860"):
        opts.add_argument(a)
    opts.binary_location = shutil.which("chromium")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    drv.set_page_load_timeout(20)
    drv.set_script_timeout(10)
    try:
        yield drv
    finally:
        try:
            drv.save_screenshot(str(tmp_path / f"{request.node.name}.png"))
        finally:
            drv.quit()


# --- helpers -----------------------------------------------------------------

def by_id(drv, element_id):
    els = drv.find_elements("id", element_id)
    return els[0] if els else None


def text_of(drv, element_id) -> str:
    """The element's text, read in one script call: the job page rebuilds
    its fields on every poll, so a found element may be replaced before a
    second WebDriver call reads it."""
    return drv.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.textContent : ''",
        element_id)


def wait_for(drv, element_id, timeout=WAIT):
    return wait_until(lambda: by_id(drv, element_id), timeout, interval=0.1,
                      what=lambda: f"#{element_id} on {drv.current_url}; "
                                   f"error box: {text_of(drv, 'error')!r}")


def wait_text(drv, element_id, predicate, timeout=WAIT):
    return wait_until(lambda: (lambda t: t if predicate(t) else None)(text_of(drv, element_id)),
                      timeout, interval=0.1,
                      what=lambda: f"#{element_id} text; now {text_of(drv, element_id)!r}, "
                                   f"error box: {text_of(drv, 'error')!r}")


def sign_in(drv, srv, key, page="#/jobs"):
    drv.get(f"{srv.base}/ui/{page}")
    wait_for(drv, "credential").send_keys(key)
    by_id(drv, "signin-submit").click()


def selected_text(drv, selector) -> str | None:
    """The text of the first element matching a CSS selector, in one call
    (tables are rebuilt when they reload)."""
    return drv.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : null",
        selector)


def bar(drv):
    """The progress bar's value (None when it is indeterminate)."""
    return drv.execute_script("const b = document.getElementById('job-progress');"
                              "return b && b.hasAttribute('value') ? b.value : null")


def csp_violations(drv) -> list[str]:
    return [e["message"] for e in drv.get_log("browser")
            if "Content Security Policy" in e["message"]]


def enqueue(srv, body) -> dict:
    r = http(srv.port, "POST", "/v1/jobs", body)
    assert r.status == 201, r
    return r.json


def claimed(srv, job_id) -> dict:
    r = http(srv.port, "POST", "/v1/claim", {"kinds": [PULL_KIND], "max": 1, "lease": 60})
    assert r.status == 200, r
    (j,) = r.json["jobs"]
    assert j["id"] == job_id, j
    return j


def job(srv, job_id) -> dict:
    r = http(srv.port, "GET", f"/v1/jobs/{job_id}")
    assert r.status == 200, r
    return r.json


# --- the files ---------------------------------------------------------------

def test_files_served_with_csp_and_page_loads_clean(srv, browser):
    types = {"/ui": "text/html", "/ui/": "text/html", "/ui/app.js": "text/javascript",
             "/ui/app.css": "text/css"}
    for path, ctype in types.items():
        r = http(srv.port, "GET", path, key=None)
        assert r.status == 200, (path, r.status)
        assert r.header("Content-Type").split(";")[0] == ctype, (path, r.headers)
        assert r.header("Content-Security-Policy") == CSP, (path, r.headers)
        assert r.header("X-Content-Type-Options") == "nosniff"
        assert r.header("Cache-Control") == "no-cache"
        etag = r.header("ETag")
        assert etag and etag.startswith('"'), r.headers
        again = http(srv.port, "GET", path, key=None, headers={"If-None-Match": etag})
        assert again.status == 304 and again.body == b"" and again.header("ETag") == etag
    page = http(srv.port, "GET", "/ui", key=None).body.decode()
    # nothing inline for the policy to refuse: no <style>, no handler attributes
    assert "<style" not in page and not re.search(r"\son[a-z]+\s*=", page)
    assert "<script src=" in page and "<script>" not in page
    r = http(srv.port, "GET", "/ui/secret.txt", key=None)
    assert r.status == 404 and r.json["error"] == "not_found", r

    browser.get(f"{srv.base}/ui")
    wait_for(browser, "credential")
    assert browser.title == "Trireme"
    logs = browser.get_log("browser")
    assert [e for e in logs if e["level"] == "SEVERE"] == [], logs
    # The policy is in force: a script element with inline code is refused.
    browser.execute_script("""
        window.__ran = false;
        const s = document.createElement('script');
        s.textContent = 'window.__ran = true';
        document.body.append(s);""")
    assert browser.execute_script("return window.__ran") is False
    assert wait_until(lambda: csp_violations(browser), 5, interval=0.1)


# --- signed in ---------------------------------------------------------------

def test_jobs_list_filter_and_pages(srv, browser):
    queue = f"ui-list-{uuid.uuid4().hex[:6]}"
    made = enqueue(srv, [{"kind": "noop", "queue": queue, "delay": 3600, "payload": {"n": i}}
                         for i in range(53)])
    ids = [j["id"] for j in made["jobs"]]
    r = http(srv.port, "POST", f"/v1/jobs/{ids[0]}/cancel")
    assert r.status == 200 and r.json["status"] == "cancelled", r

    sign_in(browser, srv, API_KEY, f"#/jobs?queue={queue}")
    wait_for(browser, "jobs")
    rows = browser.find_elements("css selector", "#jobs tr.job")
    assert len(rows) == 50, len(rows)  # the API's default page
    shown = {int(r.get_attribute("data-id")) for r in rows}
    assert shown <= set(ids)
    # next page through next_cursor: the three left
    by_id(browser, "jobs-next").click()
    wait_until(lambda: len(browser.find_elements("css selector", "#jobs tr.job")) == 3, WAIT,
               interval=0.1, what="the second page")
    rest = {int(r.get_attribute("data-id"))
            for r in browser.find_elements("css selector", "#jobs tr.job")}
    assert rest | shown == set(ids) and not rest & shown
    assert by_id(browser, "jobs-next") is None

    # filter by status: only the cancelled one
    from selenium.webdriver.support.select import Select
    by_id(browser, "jobs-first").click()
    wait_for(browser, "filter-status")
    Select(by_id(browser, "filter-status")).select_by_value("cancelled")
    wait_until(lambda: [r.get_attribute("data-id")
                        for r in browser.find_elements("css selector", "#jobs tr.job")]
               == [str(ids[0])], WAIT, interval=0.1, what="the cancelled job alone")
    assert "status=cancelled" in browser.current_url
    row = browser.find_element("css selector", "#jobs tr.job")
    assert "cancelled" in row.text and queue in row.text
    # and a row opens the job
    row.find_element("css selector", "a").click()
    wait_text(browser, "job-status", lambda t: t == "cancelled")
    assert json.loads(text_of(browser, "job-payload")) == {"n": 0}
    assert csp_violations(browser) == []


def test_jobs_list_follows_changes_live(srv, browser):
    queue = f"ui-live-{uuid.uuid4().hex[:6]}"
    old = enqueue(srv, {"kind": PULL_KIND, "queue": queue, "delay": 3600})["id"]
    sign_in(browser, srv, API_KEY, f"#/jobs?queue={queue}")
    wait_for(browser, "jobs")
    browser.execute_script("window.__same_page = true")  # gone if the page reloads
    status = lambda jid: selected_text(browser, f'#jobs tr.job[data-id="{jid}"] .status')  # noqa: E731
    jid = enqueue(srv, {"kind": PULL_KIND, "queue": queue})["id"]
    wait_until(lambda: status(jid) == "pending", WAIT, interval=0.1, what="the new job's row")
    first = browser.execute_script(
        "return document.querySelector('#jobs tr.job').getAttribute('data-id')")
    assert first == str(jid)  # on top
    r = http(srv.port, "POST", "/v1/claim", {"kinds": [PULL_KIND], "queues": [queue], "max": 1,
                                             "lease": 60})
    assert r.status == 200 and [j["id"] for j in r.json["jobs"]] == [jid], r
    tok = r.json["jobs"][0]["token"]
    wait_until(lambda: status(jid) == "running", WAIT, interval=0.1, what="running")
    r = http(srv.port, "POST", f"/v1/jobs/{jid}/complete", {"token": tok})
    assert r.status == 200, r
    wait_until(lambda: status(jid) == "succeeded", WAIT, interval=0.1, what="succeeded")
    assert status(old) == "pending"
    assert browser.execute_script("return window.__same_page") is True
    assert csp_violations(browser) == []
    # the list was read once: the changes came from the event stream (still
    # open, so not yet among the finished resource entries), not a poll
    urls = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert sum("/v1/jobs?" in u for u in urls) == 1, urls


def test_progress_moves_live(srv, browser):
    jid = enqueue(srv, {"kind": PULL_KIND, "payload": {"video": "a.mp4"}})["id"]
    sign_in(browser, srv, API_KEY, f"#/jobs/{jid}")
    wait_text(browser, "job-status", lambda t: t == "pending")
    tok = claimed(srv, jid)["token"]
    wait_text(browser, "job-status", lambda t: t == "running")
    browser.execute_script("window.__same_page = true")  # gone if the page reloads
    for pct, step in ((15, "download"), (60, "encode")):
        r = http(srv.port, "POST", f"/v1/jobs/{jid}/progress",
                 {"token": tok, "percent": pct, "step": step})
        assert r.status == 200, r
        wait_until(lambda: bar(browser) == pct, WAIT, interval=0.1,
                   what=lambda: f"bar at {pct}; now {bar(browser)}")
        assert text_of(browser, "job-step") == step
        assert text_of(browser, "job-percent") == f"{pct}%"
    browser.save_screenshot(str(srv.tmp_path / "progress-60.png"))
    r = http(srv.port, "POST", f"/v1/jobs/{jid}/complete", {"token": tok, "result": {"ok": 1}})
    assert r.status == 200, r
    wait_text(browser, "job-status", lambda t: t == "succeeded")
    assert json.loads(text_of(browser, "job-result")) == {"ok": 1}
    assert browser.execute_script("return window.__same_page") is True
    assert by_id(browser, "job-retry") is None and by_id(browser, "job-cancel") is None
    assert csp_violations(browser) == []
    # the page followed the job's event stream, and did not poll it
    urls = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert any(u.endswith(f"/v1/jobs/{jid}/events") for u in urls), urls
    assert not any(u.endswith(f"/v1/jobs/{jid}") for u in urls), urls


def test_retry_a_dead_job_then_cancel_it(srv, browser):
    jid = enqueue(srv, {"kind": PULL_KIND, "max_attempts": 1})["id"]
    tok = claimed(srv, jid)["token"]
    r = http(srv.port, "POST", f"/v1/jobs/{jid}/fail", {"token": tok, "error": "disk full"})
    assert r.status == 200 and r.json["status"] == "dead", r

    sign_in(browser, srv, API_KEY, f"#/jobs/{jid}")
    wait_text(browser, "job-status", lambda t: t == "dead")
    assert text_of(browser, "job-error") == "disk full"
    assert text_of(browser, "job-attempts") == "1 / 1"
    assert by_id(browser, "job-cancel") is None
    wait_for(browser, "job-retry").click()
    wait_text(browser, "job-status", lambda t: t == "pending")
    assert job(srv, jid)["status"] == "pending"
    assert by_id(browser, "job-retry") is None
    wait_for(browser, "job-cancel").click()
    wait_text(browser, "job-status", lambda t: t == "cancelled")
    assert job(srv, jid)["status"] == "cancelled"
    wait_for(browser, "job-retry")
    assert text_of(browser, "error") == ""
    assert csp_violations(browser) == []


def test_retry_all_dead_jobs_of_a_kind(srv, browser):
    ids = [enqueue(srv, {"kind": PULL_KIND, "max_attempts": 1})["id"] for _ in range(3)]
    for jid in ids:
        tok = claimed(srv, jid)["token"]
        r = http(srv.port, "POST", f"/v1/jobs/{jid}/fail", {"token": tok, "error": "boom"})
        assert r.status == 200 and r.json["status"] == "dead", r
    sign_in(browser, srv, API_KEY, f"#/jobs?status=dead&kind={PULL_KIND}")
    wait_until(lambda: len(browser.find_elements("css selector", "#jobs tr.job")) == 3, WAIT,
               interval=0.1, what="the three dead jobs")
    wait_for(browser, "jobs-retry-all").click()
    wait_for(browser, "jobs-empty")  # the list again: none dead any more
    assert {job(srv, jid)["status"] for jid in ids} == {"pending"}
    assert text_of(browser, "error") == ""
    assert csp_violations(browser) == []


def test_disable_a_schedule(srv, browser):
    name = f"ui-tick-{uuid.uuid4().hex[:6]}"
    r = http(srv.port, "POST", "/v1/schedules",
             {"name": name, "every": 2, "kind": "noop", "queue": "ui-ticks", "enabled": True})
    assert r.status == 201, r
    # beat records last and next fire times when it fires
    wait_until(lambda: (lambda j: j["last_fire"] and j["next_fire"])(schedule(srv, name)), WAIT,
               interval=0.2, what=lambda: f"beat fired {name}: {schedule(srv, name)}")
    sign_in(browser, srv, API_KEY, "#/schedules")
    sel = f'#schedules tr.schedule[data-name="{name}"]'
    row = wait_until(lambda: browser.find_elements("css selector", sel), WAIT, interval=0.1,
                     what=lambda: f"row of {name}; error box {text_of(browser, 'error')!r}")[0]
    assert row.get_attribute("data-enabled") == "true"
    assert "@every 2s" in row.text
    for cell in ("next-fire", "last-fire"):
        shown = row.find_element("css selector", "td." + cell).text
        assert re.fullmatch(RFC3339, shown), (cell, shown)
    row.find_element("css selector", "button.toggle").click()
    wait_until(lambda: selected_text(browser, sel + " td.enabled") == "disabled", WAIT,
               interval=0.1, what="the row shows it disabled")
    assert schedule(srv, name)["enabled"] is False
    assert selected_text(browser, sel + " button.toggle") == "Enable"
    # Run now, disabled or not: its job is enqueued and its page opens
    browser.find_element("css selector", sel + " button.run").click()
    wait_until(lambda: re.fullmatch(r".*#/jobs/\d+", browser.current_url), WAIT, interval=0.1,
               what=lambda: browser.current_url)
    jid = int(browser.current_url.rsplit("/", 1)[1])
    wait_text(browser, "job-status", lambda t: t == "pending")  # no worker role here
    job = http(srv.port, "GET", f"/v1/jobs/{jid}").json
    assert job["kind"] == "noop" and job["queue"] == "ui-ticks", job
    assert csp_violations(browser) == []


def schedule(srv, name) -> dict:
    r = http(srv.port, "GET", f"/v1/schedules/{name}")
    assert r.status == 200, r
    return r.json


def test_read_only_key_sees_no_actions(srv, browser):
    jid = enqueue(srv, {"kind": PULL_KIND, "max_attempts": 1})["id"]
    tok = claimed(srv, jid)["token"]
    assert http(srv.port, "POST", f"/v1/jobs/{jid}/fail", {"token": tok}).json["status"] == "dead"
    pending = enqueue(srv, {"kind": "noop", "delay": 3600})["id"]
    name = f"ui-ro-{uuid.uuid4().hex[:6]}"
    assert http(srv.port, "POST", "/v1/schedules",
                {"name": name, "every": 3600, "kind": "noop"}).status == 201

    sign_in(browser, srv, RO_KEY, f"#/jobs/{jid}")
    wait_text(browser, "job-status", lambda t: t == "dead")
    assert by_id(browser, "job-retry") is None and by_id(browser, "job-cancel") is None
    browser.get(f"{srv.base}/ui/#/jobs/{pending}")  # a reload: the scopes asked again
    wait_text(browser, "job-status", lambda t: t == "pending")
    assert by_id(browser, "job-cancel") is None
    browser.get(f"{srv.base}/ui/#/schedules")
    wait_until(lambda: browser.find_elements("css selector", f'tr[data-name="{name}"]'), WAIT,
               interval=0.1, what="the schedule row")
    assert browser.find_elements("css selector", "button.toggle") == []
    assert text_of(browser, "error") == ""


def test_wrong_credentials_show_the_servers_message(srv, browser):
    sign_in(browser, srv, "not-a-key")
    wait_text(browser, "error", lambda t: t == "403 forbidden: the API key is not valid")
    assert wait_for(browser, "credential")  # back at the form
    assert browser.execute_script("return sessionStorage.length") == 0

    now = int(time.time())
    expired = jwt.encode({"sub": "ui", "iat": now - 7200, "exp": now - 3600}, JWT_SECRET,
                         algorithm="HS256")
    by_id(browser, "credential").send_keys(expired)
    by_id(browser, "signin-submit").click()
    wait_text(browser, "error", lambda t: t.startswith("401 invalid_token: "))
    assert by_id(browser, "nav").get_attribute("hidden") is not None
    assert browser.execute_script("return sessionStorage.length") == 0

    # a valid JWT with scopes signs in; its scopes decide the buttons
    good = jwt.encode({"sub": "ui", "exp": now + 600, "scope": "jobs:read jobs:write"},
                      JWT_SECRET, algorithm="HS256")
    by_id(browser, "credential").clear()
    by_id(browser, "credential").send_keys(good)
    by_id(browser, "signin-submit").click()
    wait_for(browser, "job-filters")
    assert text_of(browser, "error") == ""


def test_overview(srv, browser):
    enqueue(srv, {"kind": "noop", "queue": "ui-q", "delay": 3600})
    sign_in(browser, srv, API_KEY, "#/overview")
    # a row per queue with its counts (GET /v1/queues), and the server's state
    wait_until(lambda: browser.find_elements("css selector", '#queues tr[data-queue="ui-q"]'),
               WAIT, interval=0.2, what="the ui-q row")
    row = browser.find_element("css selector", '#queues tr[data-queue="ui-q"]')
    assert row.find_element("css selector", "td.status-pending").text == "1"
    wait_text(browser, "server-database", lambda t: t == "ok")
    assert "web" in text_of(browser, "server-roles")
    assert text_of(browser, "server-ready") == "ok"
    browser.save_screenshot(str(srv.tmp_path / "overview.png"))
    by_id(browser, "nav").find_element("css selector", 'a[data-page="jobs"]').click()
    wait_for(browser, "job-filters")
    # an API error is shown as the server said it, not swallowed
    browser.get(f"{srv.base}/ui/#/jobs/987654321")
    wait_text(browser, "error", lambda t: t.startswith("404 not_found: "))
    by_id(browser, "signout").click()
    wait_for(browser, "credential")
    assert browser.execute_script("return sessionStorage.length") == 0


def test_webhook_sources(trireme, beat_db, browser, tmp_path):
    kinds = tmp_path / "kinds.json"
    kinds.write_text(json.dumps({"kinds": {}, "webhooks": {
        "stripe": {"scheme": "stripe", "secret_env": "UI_STRIPE_SECRET", "kind": "noop",
                   "queue": "payments"},
        "gh": {"scheme": "github", "secret_env": "UI_GH_SECRET", "kind": "noop",
               "id_header": "X-GitHub-Delivery"}}}))
    s = trireme("--roles=web", f"--kinds={kinds}", env=beat_db.env(
        TRIREME_API_KEYS=API_KEY, UI_STRIPE_SECRET="whsec_ui-stripe-secret",
        UI_GH_SECRET="ui-gh-secret"))
    s.base = f"http://127.0.0.1:{s.port}"
    sign_in(browser, s, API_KEY, "#/webhooks")
    rows = wait_until(lambda: browser.find_elements("css selector", "#webhooks tr.source"), WAIT,
                      interval=0.1, what=lambda: f"the sources; error {text_of(browser, 'error')!r}")
    assert len(rows) == 2
    text = browser.find_element("css selector", "#webhooks").text
    assert "POST /v1/webhooks/stripe" in text and "payments" in text
    assert "x-github-delivery" in text.lower()
    page = browser.page_source.lower()
    assert "secret" not in page  # neither the secrets nor the names of their variables
    assert csp_violations(browser) == []
