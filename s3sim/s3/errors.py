"""S3's error root and its one table: code -> (HTTP status, default message).

The HTTP adapter turns an S3Error into S3's XML error body; nothing else here
knows about the wire.
"""

from __future__ import annotations

from kmscore import errors as kms_errors

ERROR_TABLE: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "Access Denied"),
    "BadDigest": (400, "The Content-MD5 you specified did not match what we received."),
    "BucketAlreadyExists": (
        409,
        "The requested bucket name is not available. The bucket namespace is shared by all "
        "users of the system. Please select a different name and try again.",
    ),
    "BucketAlreadyOwnedByYou": (
        409,
        "Your previous request to create the named bucket succeeded and you already own it.",
    ),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty"),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed size"),
    "EntityTooSmall": (
        400,
        "Your proposed upload is smaller than the minimum allowed object size.",
    ),
    "IncompleteBody": (
        400,
        "You did not provide the number of bytes specified by the Content-Length HTTP header",
    ),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "ServiceUnavailable": (503, "Please reduce your request rate."),
    "SlowDown": (503, "Please reduce your request rate."),
    "InvalidArgument": (400, "Invalid Argument"),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidDigest": (400, "The Content-MD5 you specified is not valid."),
    "InvalidEncryptionAlgorithmError": (
        400,
        "The encryption request you specified is not valid. Supported value: AES256.",
    ),
    "InvalidLocationConstraint": (400, "The specified location-constraint is not valid"),
    "InvalidPart": (
        400,
        "One or more of the specified parts could not be found.  The part may not have been "
        "uploaded, or the specified entity tag may not match the part's entity tag.",
    ),
    "InvalidPartOrder": (
        400,
        "The list of parts was not in ascending order. Parts must be ordered by part number.",
    ),
    "InvalidPartNumber": (416, "The requested partnumber is not satisfiable"),
    "InvalidRange": (416, "The requested range is not satisfiable"),
    "InvalidRequest": (400, "Invalid Request"),
    "KeyTooLongError": (400, "Your key is too long"),
    "KMS.DisabledException": (400, "The KMS key is disabled."),
    "KMS.KMSInvalidStateException": (400, "The KMS key is not in a valid state."),
    "KMS.NotFoundException": (400, "The KMS key does not exist."),
    "MalformedXML": (
        400,
        "The XML you provided was not well-formed or did not validate against our published schema",
    ),
    "MetadataTooLarge": (400, "Your metadata headers exceed the maximum allowed metadata size."),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "NoSuchBucket": (404, "The specified bucket does not exist"),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchUpload": (
        404,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may "
        "have been aborted or completed.",
    ),
    "NotImplemented": (
        501,
        "A header you provided implies functionality that is not implemented",
    ),
    "NotModified": (304, "Not Modified"),
    "PreconditionFailed": (412, "At least one of the pre-conditions you specified did not hold"),
    "ServerSideEncryptionConfigurationNotFoundError": (
        404,
        "The server side encryption configuration was not found",
    ),
}


class S3Error(Exception):
    """An S3 error: `code` from ERROR_TABLE, with optional extra XML fields."""

    def __init__(self, code: str, message: str | None = None, **extra: str) -> None:
        status, default = ERROR_TABLE[code]
        super().__init__(f"{code}: {message or default}")
        self.code = code
        self.status = status
        self.message = message if message is not None else default
        self.extra = extra


_KMS_TO_S3: dict[str, str] = {
    "NotFoundException": "KMS.NotFoundException",
    "DisabledException": "KMS.DisabledException",
    "KMSInvalidStateException": "KMS.KMSInvalidStateException",
    "AccessDeniedException": "AccessDenied",
    "InvalidArnException": "KMS.NotFoundException",
}


def from_kms(err: kms_errors.KMSError) -> S3Error:
    """Map a kmscore error raised while S3 called KMS to what S3 returns."""
    code = _KMS_TO_S3.get(err.code)
    if code is None:
        return S3Error("InternalError", f"KMS: {err.code}")
    if code == "AccessDenied":
        return S3Error(code)
    return S3Error(code, err.message or None)
