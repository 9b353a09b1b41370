// A receiver of Trireme http job kinds: Node standard library only.
// TRIREME_SECRET is the kind's secret_env value (whsec_<base64>); PORT the port.
const http = require("http"), crypto = require("crypto");
const key = Buffer.from(process.env.TRIREME_SECRET.replace(/^whsec_/, ""), "base64");

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
    const [status, out] = ok ? [200, { echo: job.payload, attempt: job.attempt }]
                             : [401, { error: "bad signature" }]; // 4xx: no retry
    res.writeHead(status, { "Content-Type": "application/json" });
    res.end(JSON.stringify(out));
  });
}).listen(Number(process.env.PORT || 8080), "127.0.0.1");
