"""
test_webhooks.py - inbound signed webhooks (POST /v1/webhooks/{source}) on
both queue backends, against the real binary:

- for each scheme (Standard Webhooks, GitHub, Stripe, Paystack, generic
  HMAC): a correctly signed delivery is answered 200 with a job id and the
  job, visible through GET /v1/jobs/{id}, carries the body as its payload;
  a wrong signature, a missing one and (where the scheme signs a
  timestamp) a stale or replayed timestamp are 401 with a JSON error and
  store nothing; a redelivery with the same delivery id is 200 with the
  same job id and is stored once;
- an unknown source is 404, no API key is needed, the secret never reaches
  the log;
- Meta's GET handshake echoes hub.challenge for the right verify token and
  is 403 otherwise;
- a body over --max-body-bytes is 413.

Standard Webhooks deliveries are signed with the `standardwebhooks` package
from PyPI when it is installed (the reference implementation), else from
the spec.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import datetime, timezone

import pytest

pytest.register_assert_rewrite("pgtools")
from pgtools import http, wait_until  # noqa: E402
from conftest import free_port, run_cli, sanitizer_problems  # noqa: E402
from test_redis_queue import Redis  # noqa: E402

pytest_plugins = ["pgtools"]

try:
    import standardwebhooks
except ImportError:  # sign from the spec instead
    standardwebhooks = None

SW_KEY = b"trireme-standard-webhooks-test-key-0123"
SECRETS = {
    "WH_SW_SECRET": "whsec_" + base64.b64encode(SW_KEY).decode(),
    "WH_GH_SECRET": "It's a Secret to Everybody",
    "WH_STRIPE_SECRET": "whsec_stripe_test_secret",
    "WH_PAYSTACK_SECRET": "sk_test_paystack_secret",
    "WH_GENERIC_SECRET": "generic-secret",
    "WH_META_SECRET": "meta-app-secret",
    "WH_META_TOKEN": "meta-verify-token-42",
}
SOURCES = {
    "sw": {"scheme": "standard", "secret_env": "WH_SW_SECRET", "kind": "noop", "queue": "wh-sw"},
    "gh": {"scheme": "github", "secret_env": "WH_GH_SECRET", "kind": "noop", "queue": "wh-gh"},
    "stripe": {"scheme": "stripe", "secret_env": "WH_STRIPE_SECRET", "kind": "noop",
               "queue": "wh-stripe", "tolerance": 120},
    "paystack": {"scheme": "paystack", "secret_env": "WH_PAYSTACK_SECRET", "kind": "noop",
                 "queue": "wh-paystack", "id_field": "event_id"},
    "generic": {"scheme": "generic", "secret_env": "WH_GENERIC_SECRET", "kind": "noop",
                "queue": "wh-generic", "header": "X-Signature", "algorithm": "sha1",
                "encoding": "base64", "prefix": "sha1=", "id_header": "X-Delivery"},
    "meta": {"scheme": "meta", "secret_env": "WH_META_SECRET", "kind": "noop",
             "queue": "wh-meta", "verify_token_env": "WH_META_TOKEN"},
}


def _hex(key: str, alg, data: bytes) -> str:
    return hmac.new(key.encode(), data, alg).hexdigest()


def sign_sw(body: bytes, delivery: str, ts: int) -> dict[str, str]:
    if standardwebhooks is not None:
        wh = standardwebhooks.Webhook(SECRETS["WH_SW_SECRET"])
        sig = wh.sign(delivery, datetime.fromtimestamp(ts, tz=timezone.utc), body.decode())
    else:
        key = base64.b64decode(SECRETS["WH_SW_SECRET"][len("whsec_"):])
        mac = hmac.new(key, f"{delivery}.{ts}.".encode() + body, hashlib.sha256).digest()
        sig = "v1," + base64.b64encode(mac).decode()
    # A rotation: an unrelated signature first, as providers send them.
    return {"webhook-id": delivery, "webhook-timestamp": str(ts),
            "webhook-signature": "v1,AAAAbm90IHRoZSBvbmU= " + sig}


def sign_gh(body: bytes, delivery: str, ts: int) -> dict[str, str]:
    return {"X-GitHub-Delivery": delivery, "X-GitHub-Event": "push",
            "X-Hub-Signature-256": "sha256=" + _hex(SECRETS["WH_GH_SECRET"], hashlib.sha256,
                                                    body)}


def sign_stripe(body: bytes, delivery: str, ts: int) -> dict[str, str]:
    v1 = _hex(SECRETS["WH_STRIPE_SECRET"], hashlib.sha256, f"{ts}.".encode() + body)
    return {"Stripe-Signature": f"t={ts},v1={v1},v0=6ffbb59b2300aae63f272406069a9788598b792a944a"}


def sign_paystack(body: bytes, delivery: str, ts: int) -> dict[str, str]:
    return {"x-paystack-signature": _hex(SECRETS["WH_PAYSTACK_SECRET"], hashlib.sha512, body)}


def sign_generic(body: bytes, delivery: str, ts: int) -> dict[str, str]:
    mac = hmac.new(SECRETS["WH_GENERIC_SECRET"].encode(), body, hashlib.sha1).digest()
    return {"X-Delivery": delivery, "X-Signature": "sha1=" + base64.b64encode(mac).decode()}


# name -> (signer, the header holding the signature, signs a timestamp,
#          the delivery id lives in the body)
SCHEMES = {
    "sw": (sign_sw, "webhook-signature", True, False),
    "gh": (sign_gh, "X-Hub-Signature-256", False, False),
    "stripe": (sign_stripe, "Stripe-Signature", True, True),
    "paystack": (sign_paystack, "x-paystack-signature", False, True),
    "generic": (sign_generic, "X-Signature", False, False),
}


def start(trireme, db, tmp_path, backend: str, *flags: str):
    kinds = tmp_path / "kinds.json"
    kinds.write_text(json.dumps({"kinds": {}, "webhooks": SOURCES}))
    env = db.env(**SECRETS)
    redis = None
    if backend == "redis":
        redis = Redis(tmp_path)
        env.update({"REDIS_URL": redis.url, "QUEUE_BACKEND": "redis"})
    srv = trireme("--roles=web", f"--kinds={kinds}", *flags, threads=1, env=env)
    srv.wait_log(r"database connected", timeout=15)
    wait_until(lambda: http(srv.port, "GET", "/readyz", key=None).status == 200, 15,
               what="/readyz ok")
    return srv, redis


@pytest.fixture(params=["postgres", "redis"])
def hooks(request, trireme, db, tmp_path):
    srv, redis = start(trireme, db, tmp_path, request.param)
    yield srv
    if redis:
        redis.stop()


def signed_with_other_secrets(sign, body: bytes, delivery: str, ts: int) -> dict[str, str]:
    saved = dict(SECRETS)
    SECRETS.update({k: "other-secret" for k in SECRETS})
    SECRETS["WH_SW_SECRET"] = "whsec_" + base64.b64encode(b"another-key-altogether").decode()
    try:
        return sign(body, delivery, ts)
    finally:
        SECRETS.update(saved)


def post(srv, source: str, body: bytes, headers: dict[str, str]):
    # No API key: webhooks authenticate by signature.
    return http(srv.port, "POST", f"/v1/webhooks/{source}", body, key=None, headers=headers)


def stored(srv, queue: str) -> list[dict]:
    r = http(srv.port, "GET", f"/v1/jobs?queue={queue}&limit=500")
    assert r.status == 200, r
    return r.json["jobs"]


def refused(r, what: str):
    assert r.status == 401, (what, r)
    body = r.json
    assert body["error"] == "invalid_signature" and body["message"], (what, body)


@pytest.mark.parametrize("name", list(SCHEMES))
def test_scheme(hooks, name):
    srv = hooks
    sign, sig_header, timed, id_in_body = SCHEMES[name]
    queue = SOURCES[name]["queue"]
    delivery = f"evt_{uuid.uuid4().hex}"
    doc = {"type": "order.paid", "amount": 4200, "note": "caf\u00e9"}
    if id_in_body:
        doc["id" if name == "stripe" else "event_id"] = delivery
    body = json.dumps(doc).encode()
    now = int(time.time())

    # Valid: 200 at once with the job id; the job carries the body.
    r = post(srv, name, body, sign(body, delivery, now))
    assert r.status == 200, r
    job_id = r.json["id"]
    got = http(srv.port, "GET", f"/v1/jobs/{job_id}")
    assert got.status == 200, got
    assert got.json["kind"] == "noop" and got.json["queue"] == queue, got.json
    assert got.json["payload"] == doc, got.json

    # Redelivery of the same delivery id: 200, the same job, stored once.
    r2 = post(srv, name, body, sign(body, delivery, now))
    assert r2.status == 200, r2
    assert r2.json["id"] == job_id and r2.json["created"] is False, (r.json, r2.json)
    assert r.json["created"] is True, r.json
    assert len(stored(srv, queue)) == 1

    # Every refusal below stores nothing.
    other = dict(doc, amount=1)
    if id_in_body:
        other["id" if name == "stripe" else "event_id"] = f"evt_{uuid.uuid4().hex}"
    obody = json.dumps(other).encode()
    fresh = f"evt_{uuid.uuid4().hex}"

    # A signature of another body (the body was tampered with).
    refused(post(srv, name, obody, sign(body, fresh, now)), "tampered body")
    # A signature made with another secret.
    h = signed_with_other_secrets(sign, obody, fresh, now)
    refused(post(srv, name, obody, h), "wrong signature")
    # No signature at all.
    h = {k: v for k, v in sign(obody, fresh, now).items() if k != sig_header}
    refused(post(srv, name, obody, h), "missing signature")
    if timed:
        # A stale timestamp (a captured delivery replayed later), correctly
        # signed, and one from the future.
        refused(post(srv, name, obody, sign(obody, fresh, now - 3600)), "stale timestamp")
        refused(post(srv, name, obody, sign(obody, fresh, now + 3600)), "future timestamp")
    assert len(stored(srv, queue)) == 1
    srv.wait_log(r"webhook refused", count=3)
    log = srv.log
    for secret in SECRETS.values():
        assert secret not in log
    assert SW_KEY.decode() not in log


def test_unknown_source_and_no_api_key(hooks):
    srv = hooks
    body = b'{"a":1}'
    r = post(srv, "nosuch", body, sign_gh(body, "d1", 0))
    assert r.status == 404 and r.json["error"] == "unknown_source", r
    # The webhook route needs no key, but the jobs API still does.
    assert http(srv.port, "GET", "/v1/jobs", key=None).status == 401


def test_non_json_body_stored_as_string(hooks):
    srv = hooks
    body = b"payload=a%3Db&x=1"
    r = post(srv, "gh", body, sign_gh(body, f"d-{uuid.uuid4().hex}", 0))
    assert r.status == 200, r
    got = http(srv.port, "GET", f"/v1/jobs/{r.json['id']}")
    assert got.json["payload"] == body.decode(), got.json


def test_meta_handshake(hooks):
    srv = hooks

    def get(q):
        return http(srv.port, "GET", f"/v1/webhooks/{q}", key=None)

    r = get("meta?hub.mode=subscribe&hub.verify_token=meta-verify-token-42&hub.challenge=1158201444")
    assert r.status == 200, r
    assert r.body == b"1158201444"
    assert r.header("Content-Type").startswith("text/plain")
    for q in ("meta?hub.mode=subscribe&hub.verify_token=wrong-token-00000000&hub.challenge=1",
              "meta?hub.mode=unsubscribe&hub.verify_token=meta-verify-token-42&hub.challenge=1",
              "meta?hub.mode=subscribe&hub.challenge=1",
              "gh?hub.mode=subscribe&hub.verify_token=meta-verify-token-42&hub.challenge=1"):
        r = get(q)
        assert r.status == 403, (q, r)
        assert r.json["error"] == "forbidden"
    assert get("nosuch?hub.mode=subscribe").status == 404
    # Meta's POST deliveries are signed as GitHub's are.
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    mac = _hex(SECRETS["WH_META_SECRET"], hashlib.sha256, body)
    r = post(srv, "meta", body, {"X-Hub-Signature-256": "sha256=" + mac})
    assert r.status == 200, r


@pytest.mark.parametrize("backend", ["postgres", "redis"])
def test_body_limit(trireme, db, tmp_path, backend):
    srv, redis = start(trireme, db, tmp_path, backend, "--max-body-bytes=4k")
    try:
        body = json.dumps({"blob": "x" * 8192}).encode()
        r = post(srv, "gh", body, sign_gh(body, f"d-{uuid.uuid4().hex}", 0))
        assert r.status == 413, r
        assert stored(srv, "wh-gh") == []
    finally:
        if redis:
            redis.stop()


def test_bad_declarations_refused(db, tmp_path):
    """A source with an unknown kind, an unset secret or an unknown scheme
    stops the start with a message naming the source and field."""
    for src, field in (({"scheme": "github", "secret_env": "WH_GH_SECRET", "kind": "nope"}, "kind"),
                       ({"scheme": "github", "secret_env": "WH_UNSET_X", "kind": "noop"},
                        "secret_env"),
                       ({"scheme": "rot13", "secret_env": "WH_GH_SECRET", "kind": "noop"},
                        "scheme"),
                       ({"scheme": "generic", "secret_env": "WH_GH_SECRET", "kind": "noop",
                         "header": "X-Sig", "algorithm": "md5", "encoding": "hex"}, "algorithm")):
        kinds = tmp_path / "bad.json"
        kinds.write_text(json.dumps({"kinds": {}, "webhooks": {"bad": src}}))
        p = run_cli("run", "--roles=web", f"--port={free_port()}", f"--kinds={kinds}",
                    env=db.env(**SECRETS))
        assert p.returncode != 0, p
        assert f"webhook source 'bad': field '{field}'" in p.stderr, p.stderr[-2000:]
        assert "Secret to Everybody" not in p.stderr
        assert not sanitizer_problems(p.stderr), p.stderr


@pytest.mark.parametrize("backend", ["postgres", "redis"])
def test_github_webhook_runs_an_exec_kind(trireme, db, tmp_path, backend):
    """The seed flow: a GitHub-signed push arrives, is verified and stored,
    and the worker runs the exec kind the source names, the result visible
    through GET /v1/jobs/{id}. The sources are docs/examples/webhooks.json's
    (its exec program's path made absolute for the server's cwd)."""
    from conftest import REPO_ROOT
    spec = json.loads((REPO_ROOT / "docs/examples/webhooks.json").read_text())
    argv = spec["kinds"]["on_github_push"]["argv"]
    argv[1] = str(REPO_ROOT / argv[1])
    kinds = tmp_path / "webhooks.json"
    kinds.write_text(json.dumps(spec))
    env = db.env(GITHUB_WEBHOOK_SECRET=SECRETS["WH_GH_SECRET"], META_APP_SECRET="m",
                 META_VERIFY_TOKEN="t", STRIPE_WEBHOOK_SECRET="s",
                 STANDARD_WEBHOOK_SECRET="whsec_" + base64.b64encode(b"k" * 24).decode(),
                 PAYSTACK_SECRET_KEY="p", SHOPIFY_WEBHOOK_SECRET="sh")
    redis = None
    if backend == "redis":
        redis = Redis(tmp_path)
        env.update({"REDIS_URL": redis.url, "QUEUE_BACKEND": "redis"})
    try:
        srv = trireme("--roles=web,worker", f"--kinds={kinds}", "--queues=webhooks", threads=1,
                      env=env)
        srv.wait_log(r"worker listening for new jobs", timeout=15)
        body = json.dumps({"ref": "refs/heads/main", "chunks": 2}).encode()
        delivery = str(uuid.uuid4())
        r = post(srv, "github", body, sign_gh(body, delivery, 0))
        assert r.status == 200, r
        jid = r.json["id"]
        box = {}

        def done():
            box["j"] = http(srv.port, "GET", f"/v1/jobs/{jid}").json
            return box["j"]["status"] in ("succeeded", "failed", "dead")

        wait_until(done, 30, what=lambda: f"job {jid} to finish: {box.get('j')}")
        job = box["j"]
        assert job["status"] == "succeeded", job
        assert job["kind"] == "on_github_push" and job["queue"] == "webhooks", job
        assert job["result"] == {"chunks": 2}, job
        # GitHub redelivers the same X-GitHub-Delivery: the same job, not a second run.
        r2 = post(srv, "github", body, sign_gh(body, delivery, 0))
        assert r2.status == 200 and r2.json["id"] == jid and r2.json["created"] is False, r2
    finally:
        if redis:
            redis.stop()


def test_delivery_id_limit(hooks):
    """A delivery id of 120 bytes is a unique key; 121 is a 400 naming it,
    storing nothing."""
    srv = hooks
    body = b'{"n":1}'
    r = post(srv, "generic", body, sign_generic(body, "i" * 121, 0))
    assert r.status == 400 and r.json["error"] == "invalid_delivery_id", r
    assert stored(srv, "wh-generic") == []
    for _ in range(2):
        r = post(srv, "generic", body, sign_generic(body, "i" * 120, 0))
        assert r.status == 200, r
    assert len(stored(srv, "wh-generic")) == 1
