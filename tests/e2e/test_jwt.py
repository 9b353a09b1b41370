"""
test_jwt.py - JWT bearer tokens on /v1 against the real binary: an HS256
Supabase-style token (SUPABASE_JWT_SECRET) and an HS512 one (--jwt-secret)
accepted; expired, not-yet-valid (nbf), wrong iss/aud, alg none, a wrong
secret, a tampered payload and an RS256 token refused with 401
invalid_token; every refusal logged with its reason and never the token or
the secret; API keys keep working beside JWTs.

RS256 and ES256 (keys made here with cryptography, tokens with PyJWT)
through --jwt-public-key-file (PEM: SubjectPublicKeyInfo and PKCS#1) and
--jwt-jwks-file (a JWK Set; kid picks the key): accepted, and refused when
tampered, expired, alg none, an HS256 token whose HMAC key is the public
key's PEM (the algorithm-confusion attack), an RS256 token when only an EC
key is configured, and a DER-encoded ECDSA signature; scopes as for HMAC
tokens; a bad key file stops `trireme run` with the file named.
"""
import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

pytest.register_assert_rewrite("pgtools")
from conftest import free_port, run_cli  # noqa: E402
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


# --- RS256 and ES256 ---------------------------------------------------------

def pem_public(key, fmt=serialization.PublicFormat.SubjectPublicKeyInfo) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, fmt)


def hs256_raw(claims: dict, secret: bytes, header=None) -> str:
    """HS256 by hand: PyJWT refuses a PEM public key as an HMAC secret,
    which is exactly the token an attacker would make."""
    head = (b64u(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode()) + "."
            + b64u(json.dumps(claims).encode()))
    return head + "." + b64u(hmac.new(secret, head.encode(), hashlib.sha256).digest())


def tamper(token: str) -> str:
    h, p, s = token.split(".")
    sig = bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    sig[len(sig) // 2] ^= 0x01
    return ".".join([h, p, b64u(bytes(sig))])


def claims(**over):
    now = int(time.time())
    c = {"sub": "u-1", "iat": now, "exp": now + 600}
    c.update(over)
    return c


def test_rs256_pem_file(trireme, db, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "rsa.pem"
    pem.write_bytes(pem_public(key))
    srv = web(trireme, db, f"--jwt-public-key-file={pem}", "--jwt-issuer=idp.example")
    srv.wait_log(r"JWT public keys loaded.*keys=1.*rs256=true.*es256=false")
    p = srv.port
    good = jwt.encode(claims(iss="idp.example"), key, algorithm="RS256")
    r = http(p, "POST", "/v1/jobs", {"kind": "noop"}, key=good)
    assert r.status in (200, 201, 202), (r.status, r.body)
    assert http(p, "GET", f"/v1/jobs/{r.json['id']}", key=good).status == 200
    # Scopes come from the claims as for HMAC tokens.
    reader = jwt.encode(claims(iss="idp.example", scope="jobs:read"), key, algorithm="RS256")
    assert http(p, "GET", "/v1/jobs", key=reader).status == 200
    forbidden(http(p, "POST", "/v1/jobs", {"kind": "noop"}, key=reader), "jobs:write")
    listed = jwt.encode(claims(iss="idp.example", scopes=["jobs:read"]), key, algorithm="RS256")
    forbidden(http(p, "POST", "/v1/jobs", {"kind": "noop"}, key=listed), "jobs:write")
    # API keys keep working beside public keys.
    assert http(p, "GET", "/v1/jobs", key=API_KEY).status == 200

    now = int(time.time())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    h, _, s = good.split(".")
    bad = {
        "signature does not verify": tamper(good),
        "JWT expired": jwt.encode(claims(iss="idp.example", exp=now - 120), key, algorithm="RS256"),
        "iss": jwt.encode(claims(iss="elsewhere"), key, algorithm="RS256"),
        "alg none": (b64u(b'{"alg":"none","typ":"JWT"}') + "."
                     + b64u(json.dumps(claims(iss="idp.example")).encode()) + "."),
        # The classic confusion: HS256 keyed with the public key's PEM.
        "does not match": hs256_raw(claims(iss="idp.example"), pem.read_bytes()),
        "crit": jwt.encode(claims(iss="idp.example"), key, algorithm="RS256",
                           headers={"crit": ["exp"]}),
    }
    for reason, token in bad.items():
        refused(p, token, reason)
    # A payload swapped under a valid signature (scope escalation).
    refused(p, ".".join([h, b64u(json.dumps(claims(iss="idp.example", scope="admin")).encode()),
                         s]), "signature does not verify")
    refused(p, jwt.encode(claims(iss="idp.example"), other, algorithm="RS256"),
            "signature does not verify")
    # ES256 with only an RSA key configured: no key of its type.
    refused(p, jwt.encode(claims(iss="idp.example"), ec_key, algorithm="ES256"), "does not match")
    # A signature of the wrong length never reaches the RSA code.
    refused(p, h + "." + good.split(".")[1] + "." + b64u(b"\x01" * 255), "length")
    srv.stop()
    assert "JWT refused" in srv.log
    assert good not in srv.log

    # The same key as PKCS#1 (BEGIN RSA PUBLIC KEY).
    pkcs1 = tmp_path / "rsa1.pem"
    pkcs1.write_bytes(pem_public(key, serialization.PublicFormat.PKCS1))
    assert b"BEGIN RSA PUBLIC KEY" in pkcs1.read_bytes()
    srv = web(trireme, db, f"--jwt-public-key-file={pkcs1}")
    assert http(srv.port, "GET", "/v1/jobs", key=good).status == 200
    srv.stop()


def test_es256_pem_only_ec(trireme, db, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "ec.pem"
    pem.write_bytes(pem_public(key))
    # The environment variable as well as the flag.
    srv = web(trireme, db, TRIREME_JWT_PUBLIC_KEY_FILE=str(pem))
    p = srv.port
    good = jwt.encode(claims(), key, algorithm="ES256")
    r = http(p, "POST", "/v1/jobs", {"kind": "noop"}, key=good)
    assert r.status in (200, 201, 202), (r.status, r.body)
    reader = jwt.encode(claims(scope="jobs:read"), key, algorithm="ES256")
    assert http(p, "GET", "/v1/jobs", key=reader).status == 200
    forbidden(http(p, "POST", "/v1/jobs", {"kind": "noop"}, key=reader), "jobs:write")

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused(p, jwt.encode(claims(), rsa_key, algorithm="RS256"), "does not match")
    refused(p, hs256_raw(claims(), pem.read_bytes()), "does not match")
    refused(p, tamper(good), "signature does not verify")
    refused(p, jwt.encode(claims(exp=int(time.time()) - 300), key, algorithm="ES256"),
            "JWT expired")
    refused(p, jwt.encode(claims(), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256"),
            "signature does not verify")
    # JWS wants r||s (64 bytes), not the DER ECDSA-Sig-Value some
    # libraries produce.
    h, pl, _ = good.split(".")
    from cryptography.hazmat.primitives import hashes
    der = key.sign(f"{h}.{pl}".encode(), ec.ECDSA(hashes.SHA256()))
    refused(p, f"{h}.{pl}.{b64u(der)}", "64 bytes")
    srv.stop()


def jwk(key, kid=None, **extra):
    d = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())
                   if isinstance(key, rsa.RSAPrivateKey)
                   else jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    if kid:
        d["kid"] = kid
    d.update(extra)
    return d


def test_jwks_file_kid_selection(trireme, db, tmp_path):
    r1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    r2 = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    r3 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    e1 = ec.generate_private_key(ec.SECP256R1())
    enc = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [
        jwk(r1, "r1", use="sig", alg="RS256"), jwk(r2, "r2"), jwk(r3, "r3"), jwk(e1, "e1", alg="ES256"),
        jwk(enc, "enc-1", use="enc", alg="RSA-OAEP")]}))
    # With an HMAC secret beside the keys: both kinds of token work.
    srv = web(trireme, db, f"--jwt-jwks-file={jwks}", SUPABASE_JWT_SECRET=SECRET)
    srv.wait_log(r"JWT public keys loaded.*keys=4.*rs256=true.*es256=true.*skipped=1")
    p = srv.port

    def tok(key, kid, alg="RS256", **c):
        return jwt.encode(claims(**c), key, algorithm=alg, headers={"kid": kid} if kid else None)

    for good in (tok(r1, "r1"), tok(r2, "r2"), tok(e1, "e1", "ES256"),
                 tok(r2, None),  # no kid: every RSA key is tried
                 jwt.encode(supabase_claims(), SECRET, algorithm="HS256")):
        r = http(p, "POST", "/v1/jobs", {"kind": "noop"}, key=good)
        assert r.status in (200, 201, 202), (r.status, r.body)
    # The kid names the key: signed by r1 but naming r3 does not verify
    # (naming r2, a 3072-bit key, the signature's length is already wrong).
    refused(p, tok(r1, "r3"), "signature does not verify")
    refused(p, tok(r1, "r2"), "signature length does not match the key")
    refused(p, tok(r1, "unknown-kid"), "kid matches no configured key")
    refused(p, tok(enc, "enc-1"), "kid matches no configured key")
    refused(p, tok(e1, "r1", "ES256"), "kid matches no configured key")
    refused(p, tamper(tok(r2, "r2")), "signature does not verify")
    refused(p, tok(r1, "r1", exp=int(time.time()) - 300), "JWT expired")
    # The JWKS's public values as an HMAC secret: HMAC tokens are checked
    # with the configured secret only.
    refused(p, hs256_raw(claims(), jwks.read_bytes()), "signature does not verify")
    forbidden(http(p, "POST", "/v1/jobs", {"kind": "noop"}, key=tok(e1, "e1", "ES256",
                                                                   scope="jobs:read")),
              "jobs:write")
    srv.stop()

    # A JWKS whose keys have no kid: a token's kid is only a hint.
    jwks.write_text(json.dumps({"keys": [jwk(e1)]}))
    srv = web(trireme, db, f"--jwt-jwks-file={jwks}")
    assert http(srv.port, "GET", "/v1/jobs", key=tok(e1, "whatever", "ES256")).status == 200
    refused(srv.port, tok(r1, "r1"), "does not match")
    refused(srv.port, jwt.encode(supabase_claims(), SECRET, algorithm="HS256"), "no HMAC secret")
    srv.stop()


def test_bad_key_files_stop_the_start(db, tmp_path):
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    priv = ec.generate_private_key(ec.SECP256R1())
    p384 = ec.generate_private_key(ec.SECP384R1())
    good_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = [
        ("--jwt-public-key-file", "missing.pem", None, "No such file"),
        ("--jwt-public-key-file", "text.pem", b"hello\n", "no PEM object"),
        ("--jwt-public-key-file", "priv.pem", priv.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()), "PRIVATE KEY"),
        ("--jwt-public-key-file", "small.pem", pem_public(small), "2048"),
        ("--jwt-public-key-file", "p384.pem", pem_public(p384), "P-256"),
        ("--jwt-jwks-file", "notjson.json", b"{nope", "not a readable JSON file"),
        ("--jwt-jwks-file", "empty.json", b'{"keys": []}', "no RS256 or ES256"),
        ("--jwt-jwks-file", "badn.json",
         json.dumps({"keys": [dict(jwk(good_rsa, "a"), n="***")]}).encode(), "key 0"),
        ("--jwt-jwks-file", "mismatch.json",
         json.dumps({"keys": [jwk(good_rsa, "a"), jwk(priv, "b", alg="RS256")]}).encode(),
         "key 1: a key's"),  # "alg" does not fit its "kty" (the log escapes quotes)
        ("--jwt-jwks-file", "offcurve.json",
         json.dumps({"keys": [dict(jwk(priv, "c"), y=b64u(b"\x01" * 32))]}).encode(),
         "not a point on P-256"),
    ]
    for flag, name, content, why in cases:
        f = tmp_path / name
        if content is not None:
            f.write_bytes(content)
        r = run_cli("run", "--roles=web", "--host=127.0.0.1", f"--port={free_port()}",
                    "--threads=1", f"{flag}={f}", env=db.env(), timeout=20)
        assert r.returncode != 0, (name, r.returncode, r.stderr[-2000:])
        assert str(f) in r.stderr and why in r.stderr, (name, r.stderr[-2000:])
