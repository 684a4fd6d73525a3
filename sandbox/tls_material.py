"""TLS material made for one run: a throwaway certificate authority and the server and client certificates it
issues, written as PEM files into a temporary directory (never committed, gone with the directory). The sandbox's
mutual TLS section and the tests use it for the provider's TLS listener, NGINX and the emulated API Gateway domains."""
from __future__ import annotations

import base64
import datetime
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class ThrowawayCa:
    """A certificate authority made for one test run, and the certificates it issues, written as PEM files into
    `directory` (a test's temporary directory: nothing here is ever committed). Server certificates name
    127.0.0.1 and localhost; client certificates carry the clientAuth usage."""

    def __init__(self, directory, name: str = "authgate test CA") -> None:
        from pathlib import Path

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.certificate = (x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
                            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                            .not_valid_before(now - datetime.timedelta(minutes=1))
                            .not_valid_after(now + datetime.timedelta(days=1))
                            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                            .sign(self.key, hashes.SHA256()))
        self.path = self._write("ca.pem", self.certificate.public_bytes(serialization.Encoding.PEM))

    def _write(self, name: str, data: bytes):
        path = self.directory / name
        path.write_bytes(data)
        return path

    def issue(self, common_name: str, *, server: bool = False) -> "IssuedCertificate":
        import ipaddress

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
                   .issuer_name(self.name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH if server
                                                         else x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                                  critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        certificate = builder.sign(self.key, hashes.SHA256())
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        der = certificate.public_bytes(serialization.Encoding.DER)
        thumbprint = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode("ascii")
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        slug = "".join(c if c.isalnum() else "-" for c in common_name)
        return IssuedCertificate(self._write(f"{slug}.pem", pem), self._write(f"{slug}.key", key_pem),
                                 pem.decode("ascii"), thumbprint)


class IssuedCertificate:
    """A certificate file and its key file, the PEM text and the RFC 8705 thumbprint (cnf x5t#S256)."""

    def __init__(self, path, key_path, pem: str, thumbprint: str) -> None:
        self.path, self.key_path, self.pem, self.thumbprint = path, key_path, pem, thumbprint

    def client_context(self, ca):
        """An ssl.SSLContext that trusts `ca` and presents this certificate."""
        import ssl

        context = ssl.create_default_context(cafile=str(ca.path))
        context.load_cert_chain(str(self.path), str(self.key_path))
        return context
