"""Server-side encryption: which data key an object gets, and which KMS call it takes.

- SSE-S3 (AES256): a random 256-bit data key per object, wrapped with AES-GCM under
  the S3 master key (derived from kmscore's root key, never stored), with the object
  id as associated data. No KMS call.
- SSE-KMS: GenerateDataKey per object with context {"aws:s3:arn": object ARN} merged
  with the user's context; GET calls Decrypt with the context rebuilt from the index.
  With a bucket key: one GenerateDataKey per (bucket, KMS key, principal) with context
  {"aws:s3:arn": bucket ARN}, cached BUCKET_KEY_TTL seconds of (simulated) time; its
  wrapped blob is stored with each object. Decrypts of a bucket key are cached the
  same way, by (wrapped blob, principal). A cache hit re-checks the key's state
  through KMS.key_state(arn) when kmscore offers it (no audit event), so a disabled
  or deleted key stops bucket-key reads and writes at once.
- SSE-C: the customer's key is the data key; only a random salt and
  HMAC-SHA256(salt, key) are stored, to tell a wrong key (403) from tampering.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from base64 import b64encode
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kmscore import errors as kms_errors
from kmscore.caller import Caller
from kmscore.clock import Clock
from s3sim.s3.errors import S3Error, from_kms
from s3sim.s3.models import CustomerKey, EncryptionRule, SseRecord, SseRequest

BUCKET_KEY_TTL = 300.0
AES256 = "AES256"
KMS = "aws:kms"
SSEC = "SSE-C"


# The SSE-S3 master key is derived from kmscore's root key under this name (never stored).
SSE_S3_SECRET = "s3/sse-s3-master"


def object_arn(bucket: str, key: str | None = None) -> str:
    return f"arn:aws:s3:::{bucket}" if key is None else f"arn:aws:s3:::{bucket}/{key}"


def ssec_check(customer: CustomerKey) -> None:
    """Validate SSE-C headers (algorithm AES256, 32-byte key, matching MD5)."""
    if customer.algorithm != AES256:
        raise S3Error("InvalidEncryptionAlgorithmError")
    if len(customer.key) != 32:
        raise S3Error("InvalidArgument", "The secret key was invalid for the specified algorithm.")
    md5 = b64encode(hashlib.md5(customer.key).digest()).decode()
    if not hmac.compare_digest(md5, customer.key_md5):
        raise S3Error(
            "InvalidArgument",
            "The calculated MD5 hash of the key did not match the hash that was provided.",
        )


class KeyManager:
    """Chooses and recovers per-object data keys; the only S3 code that calls KMS."""

    def __init__(
        self, kms: Any, master_key: bytes, region: str, clock: Clock, rng: Callable[[int], bytes]
    ) -> None:
        self._kms = kms
        self._master = AESGCM(master_key)
        self._region = region
        self._clock = clock
        self._rng = rng
        self._gen_cache: dict[tuple[str, str, str], tuple[float, Any]] = {}
        self._dec_cache: dict[tuple[bytes, str], tuple[float, str, bytes]] = {}
        self._managed: dict[str, str] = {}  # account -> ARN of its aws/s3 key

    def _via(self, caller: Caller) -> Caller:
        return caller.via(f"s3.{self._region}.amazonaws.com", "s3.amazonaws.com")

    # -- choosing ------------------------------------------------------------------

    def resolve(self, req: SseRequest, default: EncryptionRule | None) -> SseRequest:
        """Apply the bucket default to a request that names no algorithm."""
        if req.customer or req.algorithm:
            if req.algorithm == KMS and req.bucket_key_enabled is None and default:
                bk = default.algorithm == KMS and default.bucket_key_enabled
                return SseRequest(KMS, req.kms_key_id, req.context, req.context_b64, bk)
            return req
        if default is None or default.algorithm == AES256:
            return SseRequest(AES256)
        return SseRequest(KMS, default.kms_key_id, None, None, default.bucket_key_enabled)

    async def new_key(
        self, caller: Caller, bucket: str, key: str, req: SseRequest, object_id: str
    ) -> tuple[SseRecord, bytes]:
        """A fresh data key for a new object (or upload) and the record that recovers it."""
        if req.customer:
            ssec_check(req.customer)
            salt = self._rng(16)
            mac = hmac.new(salt, req.customer.key, hashlib.sha256).digest()
            rec = SseRecord(SSEC, ssec_salt=salt, ssec_hmac=mac, ssec_key_md5=req.customer.key_md5)
            return rec, req.customer.key
        if req.algorithm == AES256:
            dk = self._rng(32)
            nonce = self._rng(12)
            wrapped = nonce + self._master.encrypt(nonce, dk, _aad(object_id))
            return SseRecord(AES256, wrapped_key=wrapped), dk
        if req.algorithm != KMS:
            raise S3Error("InvalidArgument", "The encryption method specified is not supported")
        key_id = req.kms_key_id or self._managed.get(caller.account)
        if not key_id:  # created on first use; AWS managed keys are never deleted
            key_id = await self._kms_call(self._kms.aws_managed_key, caller.account, "aws/s3")
            self._managed[caller.account] = key_id
        if req.bucket_key_enabled:
            return await self._bucket_key(caller, bucket, key_id, req)
        context = {**(req.context or {}), "aws:s3:arn": object_arn(bucket, key)}
        dk = await self._kms_call(self._kms.generate_data_key, self._via(caller), key_id, context)
        rec = SseRecord(KMS, dk.ciphertext_blob, dk.key_arn, context, req.context_b64)
        return rec, dk.plaintext

    async def _bucket_key(
        self, caller: Caller, bucket: str, key_id: str, req: SseRequest
    ) -> tuple[SseRecord, bytes]:
        now = self._clock.time()
        ck = (bucket, key_id, caller.arn)
        hit = self._gen_cache.get(ck)
        if hit and hit[0] > now:
            await self._check_state(hit[1].key_arn)
            dk = hit[1]
        else:
            context = {"aws:s3:arn": object_arn(bucket)}
            dk = await self._kms_call(
                self._kms.generate_data_key, self._via(caller), key_id, context
            )
            self._gen_cache[ck] = (now + BUCKET_KEY_TTL, dk)
            self._prune(now)
        context = {"aws:s3:arn": object_arn(bucket)}
        rec = SseRecord(KMS, dk.ciphertext_blob, dk.key_arn, context, req.context_b64, True)
        return rec, dk.plaintext

    # -- recovering ----------------------------------------------------------------

    async def data_key(
        self, caller: Caller, rec: SseRecord, object_id: str, customer: CustomerKey | None
    ) -> bytes:
        """Recover an object's data key (Decrypt through KMS for SSE-KMS)."""
        if rec.algorithm == SSEC:
            return self._ssec_key(rec, customer)
        if customer is not None:
            raise S3Error(
                "InvalidRequest",
                "The encryption parameters are not applicable to this object.",
            )
        if rec.algorithm == AES256:
            wrapped = rec.wrapped_key
            return self._master.decrypt(wrapped[:12], wrapped[12:], _aad(object_id))
        if rec.bucket_key:
            return await self._bucket_decrypt(caller, rec)
        dec = await self._kms_call(
            self._kms.decrypt, self._via(caller), rec.wrapped_key, rec.context
        )
        return dec.plaintext

    async def _bucket_decrypt(self, caller: Caller, rec: SseRecord) -> bytes:
        now = self._clock.time()
        ck = (rec.wrapped_key, caller.arn)
        hit = self._dec_cache.get(ck)
        if hit and hit[0] > now:
            await self._check_state(hit[1])
            return hit[2]
        dec = await self._kms_call(
            self._kms.decrypt, self._via(caller), rec.wrapped_key, rec.context
        )
        self._dec_cache[ck] = (now + BUCKET_KEY_TTL, dec.key_arn, dec.plaintext)
        self._prune(now)
        return dec.plaintext

    def check_customer(self, rec: SseRecord, customer: CustomerKey | None) -> None:
        """HEAD: SSE-C objects need the right key; other objects refuse SSE-C headers."""
        if rec.algorithm == SSEC:
            self._ssec_key(rec, customer)
        elif customer is not None:
            raise S3Error(
                "InvalidRequest", "The encryption parameters are not applicable to this object."
            )

    def _ssec_key(self, rec: SseRecord, customer: CustomerKey | None) -> bytes:
        if customer is None:
            raise S3Error(
                "InvalidRequest",
                "The object was stored using a form of Server Side Encryption. The correct "
                "parameters must be provided to retrieve the object.",
            )
        ssec_check(customer)
        mac = hmac.new(rec.ssec_salt, customer.key, hashlib.sha256).digest()
        if not hmac.compare_digest(mac, rec.ssec_hmac):
            raise S3Error("AccessDenied")
        return customer.key

    # -- helpers -------------------------------------------------------------------

    async def _kms_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call KMS: off the event loop when it fsyncs its audit trail, else inline (a
        GenerateDataKey takes ~64 us here, a thread hand-off ~95 us of CPU more:
        docs/PERFORMANCE.md, session 6)."""
        try:
            if getattr(self._kms, "fsync", True):
                return await asyncio.to_thread(fn, *args)
            return fn(*args)
        except kms_errors.KMSError as err:
            raise from_kms(err) from None

    async def _check_state(self, key_arn: str) -> None:
        state_of = getattr(self._kms, "key_state", None)
        if state_of is None:
            return
        try:  # in-memory, no audit: far cheaper inline than a thread hop on every request
            state = state_of(key_arn)
        except kms_errors.KMSError as err:
            raise from_kms(err) from None
        if state == "Disabled":
            raise S3Error("KMS.DisabledException", f"{key_arn} is disabled.")
        if state == "PendingDeletion":
            raise S3Error("KMS.KMSInvalidStateException", f"{key_arn} is pending deletion.")
        if state not in ("Enabled", None):
            raise S3Error("KMS.KMSInvalidStateException", f"{key_arn} is {state}.")

    def _prune(self, now: float) -> None:
        if len(self._gen_cache) + len(self._dec_cache) < 1024:
            return
        self._gen_cache = {k: v for k, v in self._gen_cache.items() if v[0] > now}
        self._dec_cache = {k: v for k, v in self._dec_cache.items() if v[0] > now}


def _aad(object_id: str) -> bytes:
    return b"s3sim/sse-s3/v1|" + object_id.encode()


def context_header(rec: SseRecord) -> Mapping[str, str]:
    """The user's part of an SSE-KMS context (what S3 echoes), decoded."""
    return {k: v for k, v in rec.context.items() if k != "aws:s3:arn"}
