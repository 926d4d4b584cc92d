"""The root key that seals key material at rest.

Taken from env S3SIM_ROOT_KEY (base64 of 32 bytes) if set, else from
<data-dir>/kms/root.key (32 raw bytes), created with mode 0600 on first start.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ENV_VAR = "S3SIM_ROOT_KEY"
SEAL_MAGIC = b"KRK1"


class RootKeyError(Exception):
    """The root key is missing, malformed, or does not open the stored material."""


def load_root_key(
    kms_dir: Path, env: Mapping[str, str] | None = None, rng: Callable[[int], bytes] = os.urandom
) -> bytes:
    env = os.environ if env is None else env
    if env.get(ENV_VAR):
        try:
            key = base64.b64decode(env[ENV_VAR], validate=True)
        except (binascii.Error, ValueError) as e:
            raise RootKeyError(f"{ENV_VAR} is not valid base64") from e
        if len(key) != 32:
            raise RootKeyError(f"{ENV_VAR} must decode to 32 bytes")
        return key
    path = kms_dir / "root.key"
    if path.exists():
        key = path.read_bytes()
        if len(key) != 32:
            raise RootKeyError(f"{path} must hold exactly 32 bytes")
        return key
    kms_dir.mkdir(parents=True, exist_ok=True)
    key = rng(32)
    tmp = kms_dir / f"root.key.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return key


def seal_material(root: bytes, material: bytes, label: bytes, rng: Callable[[int], bytes]) -> bytes:
    """AES-256-GCM under the root key; `label` (key id + material id) is the AAD."""
    nonce = rng(12)
    return SEAL_MAGIC + nonce + AESGCM(root).encrypt(nonce, material, SEAL_MAGIC + label)


def unseal_material(root: bytes, sealed: bytes, label: bytes) -> bytes:
    if sealed[:4] != SEAL_MAGIC:
        raise RootKeyError("sealed key material has an unknown format")
    try:
        return AESGCM(root).decrypt(sealed[4:16], sealed[16:], SEAL_MAGIC + label)
    except InvalidTag as e:
        raise RootKeyError("the root key does not open the stored key material") from e


def derive_secret(root: bytes, name: str) -> bytes:
    """A 32-byte secret for `name` derived from the root key (HKDF-SHA256); never stored.

    Other components (e.g. S3's SSE-S3 master key) take theirs from here, so the root key
    stays the only secret on disk.
    """
    if not name:
        raise ValueError("a derived secret needs a name")
    info = b"s3sim derived secret v1\x00" + name.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(root)
