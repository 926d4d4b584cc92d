"""kmscore's error root and its one table: error class -> (AWS code, HTTP status).

Adapters map these to wire errors; S3 maps them to `KMS.<Code>` (see s3sim).
"""

from __future__ import annotations


class KMSError(Exception):
    """Root of every error kmscore raises on purpose."""

    code = "KMSInternalException"
    status = 500

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


def _error(name: str, status: int = 400) -> type[KMSError]:
    return type(name, (KMSError,), {"code": name, "status": status})


NotFoundException = _error("NotFoundException")
DisabledException = _error("DisabledException")
KMSInvalidStateException = _error("KMSInvalidStateException")
InvalidCiphertextException = _error("InvalidCiphertextException")
IncorrectKeyException = _error("IncorrectKeyException")
AccessDeniedException = _error("AccessDeniedException")
ValidationException = _error("ValidationException")
AlreadyExistsException = _error("AlreadyExistsException")
InvalidGrantTokenException = _error("InvalidGrantTokenException")
InvalidGrantIdException = _error("InvalidGrantIdException")
LimitExceededException = _error("LimitExceededException")
MalformedPolicyDocumentException = _error("MalformedPolicyDocumentException")
InvalidArnException = _error("InvalidArnException")
InvalidAliasNameException = _error("InvalidAliasNameException")
InvalidMarkerException = _error("InvalidMarkerException")
InvalidKeyUsageException = _error("InvalidKeyUsageException")
UnsupportedOperationException = _error("UnsupportedOperationException")
TagException = _error("TagException")
KMSInternalException = _error("KMSInternalException", 500)


def require_int_between(value: object, field: str, low: int, high: int) -> int:
    """`value` as an int in [low, high], else AWS's ValidationException for `field`."""
    if not isinstance(value, int) or not low <= value <= high:
        raise ValidationException(
            f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy "
            f"constraint: Member must have value between {low} and {high}"
        )
    return value


ERROR_TABLE: dict[str, tuple[str, int]] = {
    cls.__name__: (cls.code, cls.status)
    for cls in (
        NotFoundException,
        DisabledException,
        KMSInvalidStateException,
        InvalidCiphertextException,
        IncorrectKeyException,
        AccessDeniedException,
        ValidationException,
        AlreadyExistsException,
        InvalidGrantTokenException,
        InvalidGrantIdException,
        LimitExceededException,
        MalformedPolicyDocumentException,
        InvalidArnException,
        InvalidAliasNameException,
        InvalidMarkerException,
        InvalidKeyUsageException,
        UnsupportedOperationException,
        TagException,
        KMSInternalException,
    )
}
