"""
tlstools.py - TLS helpers for the end-to-end tests: a throw-away CA and
certificates made with the `openssl` command, and an HTTPS version of
e2e_http.Conn built on Python's ssl module.

Certificates name "localhost" (DNS) and 127.0.0.1 (IP); clients connect to
127.0.0.1 and ask for server name "localhost", which is what BearSSL and
Python verify.
"""
from __future__ import annotations

import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from e2e_http import DEFAULT_TIMEOUT, HOST, Conn

SERVER_NAME = "localhost"


def _openssl(*args: str, cwd: Path):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed: {r.stderr}")


def _new_key(path: Path, kind: str):
    if kind == "ec":
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                 str(path), cwd=path.parent)
    else:
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out",
                 str(path), cwd=path.parent)


@dataclass
class CA:
    dir: Path
    cert: Path
    key: Path

    def issue(self, name: str, kind: str = "ec", dns: str = SERVER_NAME,
              ip: str | None = "127.0.0.1", days: int = 2) -> tuple[Path, Path]:
        """A server certificate signed by this CA; returns (cert, key) paths."""
        key = self.dir / f"{name}.key"
        csr = self.dir / f"{name}.csr"
        cert = self.dir / f"{name}.pem"
        ext = self.dir / f"{name}.ext"
        san = f"DNS:{dns}" + (f",IP:{ip}" if ip else "")
        ext.write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                       "keyUsage=digitalSignature,keyEncipherment\n"
                       "extendedKeyUsage=serverAuth\n")
        _new_key(key, kind)
        _openssl("req", "-new", "-key", str(key), "-out", str(csr), "-subj", f"/CN={dns}",
                 cwd=self.dir)
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                 "-CAcreateserial", "-out", str(cert), "-days", str(days), "-sha256", "-extfile",
                 str(ext), cwd=self.dir)
        return cert, key


def make_ca(directory: Path, name: str = "ca", kind: str = "ec") -> CA:
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / f"{name}.key"
    cert = directory / f"{name}.pem"
    _new_key(key, kind)
    _openssl("req", "-x509", "-new", "-key", str(key), "-out", str(cert), "-days", "2", "-sha256",
             "-subj", f"/CN=Trireme e2e {name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    return CA(directory, cert, key)


def client_context(ca: CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca.cert))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class TlsConn(Conn):
    """e2e_http.Conn over TLS (is_open_after is not available: no MSG_PEEK)."""

    def __init__(self, port: int, ca: CA, timeout: float = DEFAULT_TIMEOUT):
        super().__init__(port, timeout=timeout, connect=False)
        raw = socket.create_connection((HOST, port), timeout=timeout)
        self.sock = client_context(ca).wrap_socket(raw, server_hostname=SERVER_NAME)
        self.sock.settimeout(timeout)

    def _fill(self, deadline: float) -> bool:
        try:
            return super()._fill(deadline)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            self.eof = True
            return False
