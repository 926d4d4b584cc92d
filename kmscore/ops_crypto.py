"""Cryptographic operations: encrypt, decrypt, re-encrypt, data keys, random."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kmscore import blob
from kmscore import context as ctxlib
from kmscore.caller import Caller
from kmscore.errors import (
    AccessDeniedException,
    IncorrectKeyException,
    InvalidCiphertextException,
    NotFoundException,
    ValidationException,
    require_int_between,
)
from kmscore.models import DESTROYED, DataKey, Decrypted, Encrypted, KeyRecord, ReEncrypted
from kmscore.service import CallRecord, KMSCore

MAX_PLAINTEXT = 4096
KEY_SPECS = {"AES_256": 32, "AES_128": 16}
INCORRECT_KEY = "The key ID in the request does not identify a CMK that can perform this operation."


def _ctx_param(context: object) -> dict[str, str] | None:
    """The context as logged: only string pairs (a bad context is logged as null)."""
    if not context or not isinstance(context, Mapping):
        return None
    return {str(k): str(v) for k, v in context.items()}


def data_key_length(key_spec: str | None, number_of_bytes: int | None) -> int:
    if (key_spec is None) == (number_of_bytes is None):
        raise ValidationException("Please specify either number of bytes or key spec.")
    if number_of_bytes is not None:
        return require_int_between(number_of_bytes, "numberOfBytes", 1, 1024)
    if key_spec not in KEY_SPECS:
        raise ValidationException(
            f"1 validation error detected: Value '{key_spec}' at 'keySpec' failed to satisfy "
            "constraint: Member must satisfy enum value set: [AES_256, AES_128]"
        )
    return KEY_SPECS[key_spec]


class CryptoOps(KMSCore):
    def _seal(
        self, key: KeyRecord, plaintext: bytes, context: Mapping[str, str]
    ) -> tuple[bytes, str]:
        m = key.current_material
        material = self._material_bytes(key, m)
        return blob.seal(
            key.key_id, m.material_id, material, plaintext, context, self._rng
        ), m.material_id

    def _usable_key(
        self,
        caller: Caller,
        key_id: str,
        action: str,
        context: Mapping[str, str],
        rec: CallRecord,
    ) -> KeyRecord:
        with self._lock:
            key = self._resolve(caller, key_id, rec)
            self._authorize(caller, action, key, context)
            self._require_usable(key)
            return key

    def encrypt(
        self,
        caller: Caller,
        key_id: str,
        plaintext: bytes,
        context: Mapping[str, str] | None = None,
        grant_tokens: Iterable[str] = (),
    ) -> Encrypted:
        params = {
            "keyId": key_id,
            "encryptionContext": _ctx_param(context),
            "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
        }
        with self._call(caller, "Encrypt", params, read_only=True) as rec:
            ctx = ctxlib.normalize(context)
            if (
                not isinstance(plaintext, bytes | bytearray)
                or not 1 <= len(plaintext) <= MAX_PLAINTEXT
            ):
                raise ValidationException(
                    "1 validation error detected: Value at 'plaintext' failed to satisfy "
                    "constraint: Member must have length between 1 and 4096"
                )
            self._check_tokens(grant_tokens)
            key = self._usable_key(caller, key_id, "kms:Encrypt", ctx, rec)
            ct, mid = self._seal(key, bytes(plaintext), ctx)
            return Encrypted(key.arn, ct, mid)

    def generate_data_key(
        self,
        caller: Caller,
        key_id: str,
        context: Mapping[str, str] | None = None,
        key_spec: str | None = "AES_256",
        number_of_bytes: int | None = None,
        grant_tokens: Iterable[str] = (),
    ) -> DataKey:
        return self._data_key(
            caller, "GenerateDataKey", key_id, context, key_spec, number_of_bytes, grant_tokens
        )

    def generate_data_key_without_plaintext(
        self,
        caller: Caller,
        key_id: str,
        context: Mapping[str, str] | None = None,
        key_spec: str | None = "AES_256",
        number_of_bytes: int | None = None,
        grant_tokens: Iterable[str] = (),
    ) -> DataKey:
        return self._data_key(
            caller,
            "GenerateDataKeyWithoutPlaintext",
            key_id,
            context,
            key_spec,
            number_of_bytes,
            grant_tokens,
        )

    def _data_key(
        self,
        caller: Caller,
        op: str,
        key_id: str,
        context: Mapping[str, str] | None,
        key_spec: str | None,
        number_of_bytes: int | None,
        grant_tokens: Iterable[str],
    ) -> DataKey:
        if number_of_bytes is not None and key_spec == "AES_256":
            key_spec = None  # the default spec yields to an explicit length
        params: dict = {"keyId": key_id, "encryptionContext": _ctx_param(context)}
        if key_spec is not None:
            params["keySpec"] = key_spec
        if number_of_bytes is not None:
            params["numberOfBytes"] = number_of_bytes
        with self._call(caller, op, params, read_only=True) as rec:
            ctx = ctxlib.normalize(context)
            n = data_key_length(key_spec, number_of_bytes)
            self._check_tokens(grant_tokens)
            key = self._usable_key(caller, key_id, f"kms:{op}", ctx, rec)
            plain = self._rng(n)
            ct, mid = self._seal(key, plain, ctx)
            return DataKey(key.arn, plain if op == "GenerateDataKey" else None, ct, mid)

    def decrypt(
        self,
        caller: Caller,
        ciphertext_blob: bytes,
        context: Mapping[str, str] | None = None,
        key_id: str | None = None,
        grant_tokens: Iterable[str] = (),
    ) -> Decrypted:
        params: dict = {
            "encryptionContext": _ctx_param(context),
            "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
        }
        if key_id:
            params["keyId"] = key_id
        with self._call(caller, "Decrypt", params, read_only=True) as rec:
            ctx = ctxlib.normalize(context)
            self._check_tokens(grant_tokens)
            plain, key, mid = self._open(caller, ciphertext_blob, ctx, key_id, "kms:Decrypt", rec)
            return Decrypted(key.arn, plain, mid)

    def _blob_key(self, caller: Caller, header: blob.BlobHeader) -> KeyRecord:
        key = self._state.keys.get(header.key_id)
        if key is None:
            raise InvalidCiphertextException("")
        if key.owner_service is not None and caller.service_principal != key.owner_service:
            raise InvalidCiphertextException("")
        key = self._refresh(key)
        if key.state == DESTROYED:
            raise NotFoundException(f"Key '{key.arn}' does not exist")
        return key

    def _open(
        self,
        caller: Caller,
        ciphertext: bytes,
        ctx: Mapping[str, str],
        key_id: str | None,
        action: str,
        rec: CallRecord,
    ) -> tuple[bytes, KeyRecord, str]:
        header = blob.parse_header(ciphertext)
        with self._lock:
            key = self._blob_key(caller, header)
            if key_id:
                named = self._resolve(caller, key_id)
                if named.key_id != key.key_id:
                    raise IncorrectKeyException(INCORRECT_KEY)
            rec.key(key)
            self._authorize(caller, action, key, ctx)
            self._require_usable(key)
            material = key.material(header.material_id)
            if material is None:
                raise InvalidCiphertextException("")
            raw = self._material_bytes(key, material)
        return blob.open_blob(header, ciphertext, raw, ctx), key, header.material_id

    def re_encrypt(
        self,
        caller: Caller,
        ciphertext_blob: bytes,
        destination_key_id: str,
        source_context: Mapping[str, str] | None = None,
        destination_context: Mapping[str, str] | None = None,
        source_key_id: str | None = None,
        grant_tokens: Iterable[str] = (),
    ) -> ReEncrypted:
        params = {
            "sourceEncryptionContext": _ctx_param(source_context),
            "destinationKeyId": destination_key_id,
            "destinationEncryptionContext": _ctx_param(destination_context),
        }
        if source_key_id:
            params["sourceKeyId"] = source_key_id
        with self._call(caller, "ReEncrypt", params, read_only=True) as rec:
            src_ctx = ctxlib.normalize(source_context)
            dst_ctx = ctxlib.normalize(destination_context)
            self._check_tokens(grant_tokens)
            plain, src, src_mid = self._open(
                caller, ciphertext_blob, src_ctx, source_key_id, "kms:ReEncryptFrom", rec
            )
            dst = self._usable_key(caller, destination_key_id, "kms:ReEncryptTo", dst_ctx, rec)
            ct, dst_mid = self._seal(dst, plain, dst_ctx)
            return ReEncrypted(ct, src.arn, dst.arn, src_mid, dst_mid)

    def generate_random(self, caller: Caller, number_of_bytes: int) -> bytes:
        with self._call(caller, "GenerateRandom", None, read_only=True):
            if not caller.iam_allows("kms:GenerateRandom"):
                raise AccessDeniedException(
                    f"User: {caller.arn} is not authorized to perform: kms:GenerateRandom"
                )
            if not isinstance(number_of_bytes, int) or not 1 <= number_of_bytes <= 1024:
                raise ValidationException(
                    f"1 validation error detected: Value '{number_of_bytes}' at "
                    "'numberOfBytes' failed to satisfy constraint: Member must have value "
                    "between 1 and 1024"
                )
            return self._rng(number_of_bytes)
