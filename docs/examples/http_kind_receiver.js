// A receiver of Trireme http job kinds: Node standard library only.
// TRIREME_SECRET is the kind's secret_env value (whsec_<base64>); PORT the port.
// Long jobs (payload {"long": true}): answered 202 and finished through the job
// callbacks at TRIREME_URL with TRIREME_API_KEY, using the token each delivery carries.
const http = require("http"), crypto = require("crypto");
const key = Buffer.from(process.env.TRIREME_SECRET.replace(/^whsec_/, ""), "base64");
const base = new URL(process.env.TRIREME_URL || "http://127.0.0.1:8080");

function callBack(job, token, what, body, then) { // a 409: this attempt is stale, drop its work
  const data = JSON.stringify({ ...body, token });
  http.request({ host: base.hostname, port: base.port, method: "POST", path: `/v1/jobs/${job.id}/${what}`,
    headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data),
               Authorization: `Bearer ${process.env.TRIREME_API_KEY || ""}` } },
  (r) => { r.resume(); r.on("end", () => then && then(r.statusCode)); }).end(data);
}

http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks), h = req.headers;
    const signed = Buffer.concat([Buffer.from(`${h["webhook-id"]}.${h["webhook-timestamp"]}.`), body]);
    const want = crypto.createHmac("sha256", key).update(signed).digest("base64");
    const fresh = Math.abs(Date.now() / 1000 - Number(h["webhook-timestamp"])) < 300;
    const ok = fresh && (h["webhook-signature"] || "").split(" ").some((s) =>
      s.startsWith("v1,") && s.length - 3 === want.length &&
      crypto.timingSafeEqual(Buffer.from(s.slice(3)), Buffer.from(want)));
    const job = ok ? JSON.parse(body) : null;
    const token = h["trireme-job-token"]; // this attempt's, for the callbacks after a 202
    if (ok && token && job.payload && job.payload.long) { // hand off: 202 now, report later
      res.writeHead(202, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ accepted: true }));
      return callBack(job, token, "progress", { percent: 50, step: "halfway" }, () =>
        callBack(job, token, "complete", { result: { echo: job.payload, attempt: job.attempt, long: true } }));
    }
    const [status, out] = ok ? [200, { echo: job.payload, attempt: job.attempt }]
                             : [401, { error: "bad signature" }]; // 4xx: no retry
    res.writeHead(status, { "Content-Type": "application/json" });
    res.end(JSON.stringify(out));
  });
}).listen(Number(process.env.PORT || 8080), "127.0.0.1");
