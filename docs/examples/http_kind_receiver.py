# A receiver of Trireme http job kinds: Python standard library only.
# TRIREME_SECRET is the kind's secret_env value (whsec_<base64>); PORT the port.
# Long jobs (payload {"long": true}): answered 202 and finished through the job
# callbacks at TRIREME_URL with TRIREME_API_KEY, using the token each delivery carries.
import base64, hashlib, hmac, json, os, threading, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
KEY = base64.b64decode(os.environ["TRIREME_SECRET"].removeprefix("whsec_"))
URL, API_KEY = os.environ.get("TRIREME_URL", "http://127.0.0.1:8080"), os.environ.get("TRIREME_API_KEY", "")

def call_back(job, token, what, body):  # an HTTPError 409: this attempt is stale, drop its work
    req = urllib.request.Request(f"{URL}/v1/jobs/{job['id']}/{what}", json.dumps(dict(body, token=token)).encode(),
                                 {"Authorization": "Bearer " + API_KEY, "Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=30).close()

def long_job(job, token):  # your long work, reported as it goes (heartbeat within the kind's lease)
    call_back(job, token, "progress", {"percent": 50, "step": "halfway"})
    call_back(job, token, "complete", {"result": {"echo": job["payload"], "attempt": job["attempt"], "long": True}})

class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        h = self.headers
        signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + body
        want = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
        ok = any(hmac.compare_digest(want, s[3:]) for s in (h["webhook-signature"] or "").split()
                 if s.startswith("v1,")) and abs(time.time() - int(h["webhook-timestamp"] or 0)) < 300
        job = json.loads(body) if ok else None
        token = h["Trireme-Job-Token"]  # this attempt's, for the callbacks after a 202
        long = ok and token and isinstance(job["payload"], dict) and job["payload"].get("long")
        status, out = (202, {"accepted": True}) if long else \
            (200, {"echo": job["payload"], "attempt": job["attempt"]}) if ok \
            else (401, {"error": "bad signature"})  # 4xx: no retry; 5xx/429: retried
        data = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if long:  # handed off: the job is ours to finish through the callbacks
            threading.Thread(target=long_job, args=(job, token)).start()

ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8080"))), Receiver).serve_forever()
