"""Connect's error root and its one table: error class -> (AWS code, HTTP status)."""

from __future__ import annotations


class ConnectError(Exception):
    """Root of every error the Connect operations raise on purpose."""

    code = "InternalServiceException"
    status = 500

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


def _error(name: str, status: int) -> type[ConnectError]:
    return type(name, (ConnectError,), {"code": name, "status": status})


ResourceNotFoundException = _error("ResourceNotFoundException", 404)
InvalidParameterException = _error("InvalidParameterException", 400)
InvalidRequestException = _error("InvalidRequestException", 400)
ResourceConflictException = _error("ResourceConflictException", 409)
DuplicateResourceException = _error("DuplicateResourceException", 409)
AccessDeniedException = _error("AccessDeniedException", 403)
ServiceQuotaExceededException = _error("ServiceQuotaExceededException", 402)
InternalServiceException = _error("InternalServiceException", 500)


class DataKeyGone(LookupError):
    """Staging an item whose data key another server process destroyed meanwhile (an
    internal race, not a Connect API error: the S3 sink answers 503, the client retries)."""


ERROR_TABLE: dict[str, tuple[str, int]] = {
    cls.__name__: (cls.code, cls.status)
    for cls in (
        ResourceNotFoundException,
        InvalidParameterException,
        InvalidRequestException,
        ResourceConflictException,
        DuplicateResourceException,
        AccessDeniedException,
        ServiceQuotaExceededException,
        InternalServiceException,
    )
}
