"""A real Debian `redis-server` on 127.0.0.1 for the Redis store's tests: a free port, no persistence, optionally a
password (`--requirepass`) or TLS only (`--tls-port`, with a certificate made here), stopped after. `redis-cli`
(installed with it) inspects what the store wrote, as an independent client."""
from __future__ import annotations

import datetime
import ipaddress
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.support.required import unavailable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tls_certificate(directory: Path, *, names: tuple[str, ...] = ("localhost", "127.0.0.1")) -> tuple[Path, Path]:
    """(certificate, key) files of a fresh self-signed server certificate for `names` (DNS names or IP addresses);
    the certificate is also the CA file a client trusts it by."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def alternative(name: str) -> x509.GeneralName:
        try:
            return x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            return x509.DNSName(name)

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([alternative(n) for n in names]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / f"{names[0]}.crt", directory / f"{names[0]}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class RedisServer:
    """One redis-server process; `start()` returns once it answers PING, `stop()` kills it and waits."""

    def __init__(self, directory: Path, *, password: str | None = None, tls: bool = False,
                 certificate: tuple[Path, Path] | None = None) -> None:
        if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
            unavailable("redis-server is not installed; install it with: apt-get install -y redis-server "
                        "(.ci/run does, as root)")
        self.directory = directory
        self.password = password
        self.tls = tls
        self.certificate = certificate or (tls_certificate(directory) if tls else None)
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    @property
    def ca_file(self) -> str:
        assert self.certificate is not None
        return str(self.certificate[0])

    def start(self) -> "RedisServer":
        args = ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
                str(self.directory), "--logfile", str(self.directory / f"redis-{self.port}.log")]
        if self.tls:
            cert, key = self.certificate
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert), "--tls-key-file",
                     str(key), "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"]
        else:
            args += ["--port", str(self.port)]
        if self.password is not None:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.process.stderr.read().decode(errors='replace')}")
            try:
                if self.cli("PING") == "PONG":
                    return self
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING within 10 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None

    def cli(self, *args: str) -> str:
        """One command through redis-cli; its reply as text (stripped)."""
        command = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "--no-auth-warning"]
        if self.tls:
            command += ["--tls", "--cacert", self.ca_file]
        if self.password is not None:
            command += ["-a", self.password]
        done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=10, check=True)
        return done.stdout.strip()

    def connections_received(self) -> int:
        """How many connections the server accepted since it started (redis-cli's own included)."""
        for line in self.cli("INFO", "stats").splitlines():
            if line.startswith("total_connections_received:"):
                return int(line.split(":", 1)[1])
        raise AssertionError("INFO stats has no total_connections_received")
