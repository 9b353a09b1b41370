"""
test_jwt.py - JWT bearer tokens on /v1 against the real binary: an HS256
Supabase-style token (SUPABASE_JWT_SECRET) and an HS512 one (--jwt-secret)
accepted; expired, not-yet-valid (nbf), wrong iss/aud, alg none, a wrong
secret, a tampered payload and an RS256 token refused with 401
invalid_token; every refusal logged with its reason and never the token or
the secret; API keys keep working beside JWTs.
"""
import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

pytest.register_assert_rewrite("pgtools")
from pgtools import API_KEY, http  # noqa: E402

pytest_plugins = ["pgtools"]

SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"


def b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def supabase_claims(**over):
    now = int(time.time())
    c = {"aud": "authenticated", "exp": now + 3600, "iat": now, "iss": "supabase-demo",
         "sub": "8f6c2c3e-6a7d-4d0e-9b5f-1e2d3c4b5a69", "email": "a@example.com",
         "role": "authenticated"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def web(trireme, db, *flags, **env):
    srv = trireme("--roles=web", *flags, env=db.env(**env))
    srv.wait_log(r"database connected")
    return srv


def refused(port, token, reason):
    r = http(port, "GET", "/v1/jobs", key=token)
    assert r.status == 401, (reason, r.status, r.body)
    assert r.json["error"] == "invalid_token", r.json
    assert reason in r.json["message"], (reason, r.json)
    assert r.header("WWW-Authenticate") == 'Bearer error="invalid_token"'
    return r


def test_hs256_supabase_and_refusals(trireme, db):
    srv = web(trireme, db, "--jwt-issuer=supabase-demo", "--jwt-audience=authenticated",
              SUPABASE_JWT_SECRET=SECRET)
    good = jwt.encode(supabase_claims(), SECRET, algorithm="HS256")
    r = http(srv.port, "POST", "/v1/jobs", {"kind": "noop"}, key=good)
    assert r.status in (200, 201, 202), (r.status, r.body)
    job_id = r.json["id"]
    assert http(srv.port, "GET", f"/v1/jobs/{job_id}", key=good).json["id"] == job_id
    # aud as an array containing the audience is fine.
    arr = jwt.encode(supabase_claims(aud=["other", "authenticated"]), SECRET, algorithm="HS256")
    assert http(srv.port, "GET", "/v1/jobs", key=arr).status == 200
    # Within the default 60 s leeway: accepted; beyond it: refused.
    now = int(time.time())
    skew = jwt.encode(supabase_claims(exp=now - 20), SECRET, algorithm="HS256")
    assert http(srv.port, "GET", "/v1/jobs", key=skew).status == 200
    # The API key still works beside JWTs.
    assert http(srv.port, "GET", "/v1/jobs", key=API_KEY).status == 200

    bad = {
        "JWT expired": jwt.encode(supabase_claims(exp=now - 120), SECRET, algorithm="HS256"),
        "nbf": jwt.encode(supabase_claims(nbf=now + 600), SECRET, algorithm="HS256"),
        "iss": jwt.encode(supabase_claims(iss="someone-else"), SECRET, algorithm="HS256"),
        "aud": jwt.encode(supabase_claims(aud="anon-app"), SECRET, algorithm="HS256"),
        "signature": jwt.encode(supabase_claims(), SECRET + "x", algorithm="HS256"),
        "alg none": (b64u(b'{"alg":"none","typ":"JWT"}') + "."
                     + b64u(json.dumps(supabase_claims()).encode()) + "."),
        "HS384": jwt.encode(supabase_claims(), SECRET, algorithm="HS384"),
    }
    # A payload swapped under a valid signature (role escalation attempt).
    h, _, s = good.split(".")
    bad["signature does not verify"] = ".".join(
        [h, b64u(json.dumps(supabase_claims(role="service_role")).encode()), s])
    # An RS256 token against an HMAC secret: algorithm/key-type mismatch.
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bad["does not match"] = jwt.encode(supabase_claims(), rsa_key, algorithm="RS256")
    for reason, token in bad.items():
        refused(srv.port, token, reason)
    # Out-of-range NumericDates (signed, so past the signature check) are
    # clamped, never converted with undefined behaviour: exp far away is
    # valid, nbf far away is not yet.
    def raw(claims):
        head = b64u(b'{"alg":"HS256","typ":"JWT"}') + "." + b64u(claims.encode())
        sig = hmac.new(SECRET.encode(), head.encode(), hashlib.sha256).digest()
        return head + "." + b64u(sig)
    base = json.dumps(supabase_claims(exp=None))[:-1]
    assert http(srv.port, "GET", "/v1/jobs", key=raw(base + ', "exp": 1e300}')).status == 200
    assert http(srv.port, "GET", "/v1/jobs",
                key=raw(base + ', "exp": 9223372036854775807}')).status == 200
    refused(srv.port, raw(base + ', "nbf": 1e300}'), "nbf")
    refused(srv.port, raw(base + ', "exp": -1e300}'), "JWT expired")
    # Missing exp is allowed (RFC 7519: optional), claims still checked.
    noexp = jwt.encode(supabase_claims(exp=None), SECRET, algorithm="HS256")
    assert http(srv.port, "GET", "/v1/jobs", key=noexp).status == 200

    srv.stop()
    log = srv.log
    assert log.count("JWT refused") >= len(bad), log[-3000:]
    assert "request_id" in log
    assert SECRET not in log
    for token in list(bad.values()) + [good]:
        assert token not in log
        assert token.split(".")[-1] not in log or not token.split(".")[-1]


def test_hs512_flag_and_leeway(trireme, db):
    srv = web(trireme, db, f"--jwt-secret={SECRET}", "--jwt-leeway=0")
    now = int(time.time())
    ok = jwt.encode({"sub": "x", "exp": now + 60}, SECRET, algorithm="HS512")
    assert http(srv.port, "GET", "/v1/jobs", key=ok).status == 200
    late = jwt.encode({"sub": "x", "exp": now - 5}, SECRET, algorithm="HS512")
    refused(srv.port, late, "expired")
    # No iss/aud flags: tokens without them are accepted.
    assert http(srv.port, "GET", "/v1/jobs",
                key=jwt.encode({"sub": "y"}, SECRET, algorithm="HS256")).status == 200


def test_without_secret_a_jwt_is_just_a_wrong_key(trireme, db):
    srv = web(trireme, db)
    token = jwt.encode(supabase_claims(), SECRET, algorithm="HS256")
    assert http(srv.port, "GET", "/v1/jobs", key=token).status == 403


def forbidden(r, scope):
    assert r.status == 403, (r.status, r.body)
    assert r.json["error"] == "insufficient_scope" and scope in r.json["message"], r.json
    assert r.header("WWW-Authenticate") == f'Bearer error="insufficient_scope", scope="{scope}"'


SCHED = {"name": "s1", "kind": "noop", "cron": "0 3 * * *"}


def test_scopes_jwt_and_api_keys(trireme, db):
    keys = f"{API_KEY},reader-key:jobs:read,writer-key:jobs:read+jobs:write,sched-key:schedules:write"
    srv = web(trireme, db, SUPABASE_JWT_SECRET=SECRET, TRIREME_API_KEYS=keys)
    p = srv.port
    reader = jwt.encode(supabase_claims(scope="jobs:read"), SECRET, algorithm="HS256")
    arr = jwt.encode(supabase_claims(scopes=["jobs:read", "jobs:write"]), SECRET, algorithm="HS256")
    default = jwt.encode(supabase_claims(), SECRET, algorithm="HS256")
    service = jwt.encode(supabase_claims(role="service_role"), SECRET, algorithm="HS256")

    for cred in (reader, "reader-key"):
        assert http(p, "GET", "/v1/jobs", key=cred).status == 200
        assert http(p, "GET", "/v1/schedules", key=cred).status == 200
        forbidden(http(p, "POST", "/v1/jobs", {"kind": "noop"}, key=cred), "jobs:write")
        forbidden(http(p, "POST", "/v1/schedules", SCHED, key=cred), "schedules:write")
    for cred in (arr, default, "writer-key"):
        r = http(p, "POST", "/v1/jobs", {"kind": "noop"}, key=cred)
        assert r.status in (200, 201, 202), (r.status, r.body)
        forbidden(http(p, "POST", "/v1/schedules", SCHED, key=cred), "schedules:write")
    # schedules:write alone cannot read jobs.
    forbidden(http(p, "GET", "/v1/jobs", key="sched-key"), "jobs:read")
    # A plain key (today's syntax) and a service_role token are admin.
    for i, cred in enumerate((API_KEY, service, "sched-key")):
        r = http(p, "POST", "/v1/schedules", dict(SCHED, name=f"jwt-{uuid.uuid4().hex[:12]}"), key=cred)
        assert r.status in (200, 201), (cred, r.status, r.body)
    # The scope part is not the key: "reader-key:jobs:read" as a key is wrong.
    assert http(p, "GET", "/v1/jobs", key="reader-key:jobs:read").status == 403
    srv.stop()
    assert "insufficient scope" in srv.log
