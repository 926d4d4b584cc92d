from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from s3sim.http.s3_headers import http_date


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2024, 2, 29, 0, 0, 0, tzinfo=UTC),
        datetime(9, 7, 4, 12, 0, 1, tzinfo=UTC),
    ]
    + [datetime(2026, 3, d, tzinfo=UTC) for d in range(1, 8)],
)
def test_http_date_matches_format_datetime(when: datetime) -> None:
    assert http_date(when) == format_datetime(when.replace(microsecond=0), usegmt=True)


def test_http_date_refuses_non_utc_like_format_datetime() -> None:
    with pytest.raises(ValueError):
        http_date(datetime(2026, 1, 2, tzinfo=timezone(timedelta(hours=1))))
