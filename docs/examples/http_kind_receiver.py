# A receiver of Trireme http job kinds: Python standard library only.
# TRIREME_SECRET is the kind's secret_env value (whsec_<base64>); PORT the port.
import base64, hashlib, hmac, json, os, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
KEY = base64.b64decode(os.environ["TRIREME_SECRET"].removeprefix("whsec_"))

class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        h = self.headers
        signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + body
        want = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
        ok = any(hmac.compare_digest(want, s[3:]) for s in (h["webhook-signature"] or "").split()
                 if s.startswith("v1,")) and abs(time.time() - int(h["webhook-timestamp"] or 0)) < 300
        job = json.loads(body) if ok else None
        status, out = (200, {"echo": job["payload"], "attempt": job["attempt"]}) if ok \
            else (401, {"error": "bad signature"})  # 4xx: no retry; 5xx/429: retried
        data = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8080"))), Receiver).serve_forever()
