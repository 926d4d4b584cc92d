"""What a botocore ClientError says, for assertions: (AWS error code, HTTP status)."""

from __future__ import annotations

from typing import Any


def err(exc: Any) -> tuple[str, int]:
    """`exc` is a pytest.ExceptionInfo of a botocore ClientError."""
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]
