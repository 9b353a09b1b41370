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
