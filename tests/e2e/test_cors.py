"""
test_cors.py - CORS on /v1 against the real binary (plain HTTP checks): a
preflight from an allowed origin answered 204 without credentials, with
methods, headers and max-age; responses to an allowed origin carry
Access-Control-Allow-Origin and Vary: Origin; other origins get no CORS
header; `*` answered as `*`; without --cors-origins nothing changes.
"""
import pytest

pytest.register_assert_rewrite("pgtools")
from pgtools import API_KEY, http  # noqa: E402

pytest_plugins = ["pgtools"]

GOOD = "http://127.0.0.1:5173"
BAD = "http://127.0.0.1:6666"


def web(trireme, db, *flags, **env):
    srv = trireme("--roles=web", *flags, env=db.env(**env))
    srv.wait_log(r"database connected")
    return srv


def preflight(port, origin):
    return http(port, "OPTIONS", "/v1/jobs", key=None,
                headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                         "Access-Control-Request-Headers": "authorization, content-type"})


def test_exact_origins(trireme, db):
    srv = web(trireme, db, "--cors-max-age=321", CORS_ORIGINS=f"https://app.example, {GOOD}")
    r = preflight(srv.port, GOOD)
    assert r.status == 204, (r.status, r.body)
    assert r.header("Access-Control-Allow-Origin") == GOOD
    assert "POST" in r.header("Access-Control-Allow-Methods")
    allow_h = r.header("Access-Control-Allow-Headers").lower()
    assert "authorization" in allow_h and "content-type" in allow_h
    assert r.header("Access-Control-Max-Age") == "321"
    assert r.header("Vary") == "Origin"
    assert r.header("Access-Control-Allow-Credentials") is None

    r = http(srv.port, "GET", "/v1/jobs", headers={"Origin": GOOD})
    assert r.status == 200
    assert r.header("Access-Control-Allow-Origin") == GOOD and r.header("Vary") == "Origin"
    # Error answers carry them too (the browser must read the 401 body).
    r = http(srv.port, "GET", "/v1/jobs", key=None, headers={"Origin": GOOD})
    assert r.status == 401 and r.header("Access-Control-Allow-Origin") == GOOD

    for origin in (BAD, GOOD + "/", "http://127.0.0.1:51730", "null"):
        r = preflight(srv.port, origin)
        assert r.header("Access-Control-Allow-Origin") is None, origin
        assert r.header("Access-Control-Allow-Methods") is None, origin
        r = http(srv.port, "GET", "/v1/jobs", headers={"Origin": origin})
        assert r.status == 200 and r.header("Access-Control-Allow-Origin") is None, origin
        assert r.header("Vary") == "Origin"


def test_star_and_off(trireme, db):
    srv = web(trireme, db, "--cors-origins=*")
    r = preflight(srv.port, BAD)
    assert r.status == 204 and r.header("Access-Control-Allow-Origin") == "*"
    assert r.header("Access-Control-Allow-Credentials") is None
    srv.stop()
    srv = web(trireme, db)
    r = http(srv.port, "GET", "/v1/jobs", key=API_KEY, headers={"Origin": GOOD})
    assert r.header("Access-Control-Allow-Origin") is None and r.header("Vary") is None
    # Without CORS configured, OPTIONS is not a preflight: no route.
    assert preflight(srv.port, GOOD).status in (404, 405)


PAGE = b"""<!doctype html><html><body><pre id="out">waiting</pre><script>
const [api, token, id] = decodeURIComponent(location.hash.slice(1)).split("|");
fetch(api + "/v1/jobs/" + id, {headers: {"Authorization": "Bearer " + token}})
  .then(r => r.json())
  .then(j => { document.getElementById("out").textContent = "job " + j.id + " " + j.kind; })
  .catch(e => { document.getElementById("out").textContent = "refused " + e.name; });
</script></body></html>"""


def test_chromium_cross_origin(trireme, db, tmp_path):
    """A page on one loopback port fetches the API on another with a JWT:
    allowed from the listed origin, refused by the browser from another."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
    import shutil
    import threading
    import time
    import jwt
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        pytest.skip("chromium/chromium-driver not installed (tools/deps.sh test)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    (tmp_path / "index.html").write_bytes(PAGE)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    pages = [ThreadingHTTPServer(("127.0.0.1", 0), handler) for _ in range(2)]
    for s in pages:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    allowed = f"http://127.0.0.1:{pages[0].server_address[1]}"
    other = f"http://127.0.0.1:{pages[1].server_address[1]}"
    secret = "cors-test-secret-0123456789abcdef0123456789"
    srv = web(trireme, db, CORS_ORIGINS=allowed, SUPABASE_JWT_SECRET=secret)
    token = jwt.encode({"sub": "u1", "role": "authenticated", "exp": int(time.time()) + 600},
                       secret, algorithm="HS256")
    r = http(srv.port, "POST", "/v1/jobs", {"kind": "noop"}, key=token)
    assert r.status in (200, 201, 202), r.body
    job = r.json["id"]

    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        opts.add_argument(a)
    opts.binary_location = shutil.which("chromium")
    drv = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        drv.set_page_load_timeout(20)
        seen = {}
        for origin in (allowed, other):
            drv.get(f"{origin}/index.html#http://127.0.0.1:{srv.port}|{token}|{job}")
            deadline = time.monotonic() + 15
            text = "waiting"
            while text == "waiting" and time.monotonic() < deadline:
                time.sleep(0.1)
                text = drv.find_element("id", "out").text
            seen[origin] = text
        assert seen[allowed] == f"job {job} noop", seen
        assert seen[other].startswith("refused TypeError"), seen
    finally:
        drv.quit()
        for s in pages:
            s.shutdown()
