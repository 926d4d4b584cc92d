"""HTTPS for `s3sim serve --tls`: a local CA and a server certificate, made on first start.

Files in <data-dir>/tls/: ca.pem (give this to clients: boto3 `verify=`, `aws --ca-bundle`),
ca-key.pem, server.pem, server-key.pem. The server certificate covers localhost,
*.localhost, 127.0.0.1 and ::1; it is re-issued from the same CA when it nears expiry.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kmscore.frozen import frozen

CA_DAYS = 3650
SERVER_DAYS = 825
DNS_NAMES = ("localhost", "*.localhost")
IP_NAMES = ("127.0.0.1", "::1")


@frozen
class TlsFiles:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def in_dir(cls, tls_dir: Path) -> TlsFiles:
        d = Path(tls_dir)
        return cls(d / "ca.pem", d / "ca-key.pem", d / "server.pem", d / "server-key.pem")


def _write(path: Path, data: bytes, private: bool) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "s3sim"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _make_ca(files: TlsFiles, now: datetime) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("s3sim local CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    _write(files.ca_key, _key_pem(key), private=True)
    _write(files.ca_cert, cert.public_bytes(serialization.Encoding.PEM), private=False)


def _make_server(files: TlsFiles, now: datetime) -> None:
    ca_key = serialization.load_pem_private_key(files.ca_key.read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in DNS_NAMES]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in IP_NAMES]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(files.server_key, _key_pem(key), private=True)
    _write(files.server_cert, cert.public_bytes(serialization.Encoding.PEM), private=False)


def _needs_server_cert(files: TlsFiles, now: datetime) -> bool:
    if not files.server_cert.exists() or not files.server_key.exists():
        return True
    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    return cert.not_valid_after_utc < now + timedelta(days=30)


def ensure_certificates(tls_dir: Path, now: datetime | None = None) -> TlsFiles:
    """Create the CA and server certificate if missing (or the server's nearly expired)."""
    now = now or datetime.now(UTC)
    Path(tls_dir).mkdir(parents=True, exist_ok=True)
    files = TlsFiles.in_dir(tls_dir)
    if not files.ca_cert.exists() or not files.ca_key.exists():
        _make_ca(files, now)
        _make_server(files, now)
    elif _needs_server_cert(files, now):
        _make_server(files, now)
    return files


def server_context(files: TlsFiles) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(files.server_cert, files.server_key)
    return ctx
