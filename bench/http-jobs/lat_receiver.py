#!/usr/bin/env python3
"""The latency receiver of bench/http-jobs/run.sh: HTTP/1.1 keep-alive, and
HTTPS when given a certificate. Every POST is answered 200 `{}`; when the
JSON body's "payload" has a "t" (time.time() taken by the harness just
before enqueueing), one line "seq latency_ms" is appended to OUT at once,
latency = arrival of the whole request - t. Same clock, same machine.

    lat_receiver.py PORT OUT [CERT KEY]

Runs until SIGTERM. Standard library only; asyncio, one process.
"""
import asyncio
import json
import signal
import ssl
import sys
import time

PORT, OUT = int(sys.argv[1]), sys.argv[2]
CTX = None
if len(sys.argv) > 4:
    CTX = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    CTX.load_cert_chain(sys.argv[3], sys.argv[4])
out = open(OUT, "a", buffering=1)
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


async def conn(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            n = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    n = int(v)
            body = await reader.readexactly(n) if n else b""
            now = time.time()
            try:
                p = json.loads(body).get("payload") or {}
                if isinstance(p, dict) and "t" in p:
                    out.write("%s %.4f\n" % (p.get("seq"), (now - float(p["t"])) * 1000))
            except ValueError:
                pass
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main():
    srv = await asyncio.start_server(conn, "127.0.0.1", PORT, ssl=CTX, backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    async with srv:
        await stop.wait()


asyncio.run(main())
