"""Times as text: UTC with milliseconds whatever the machine's time zone, one helper for CSV and MQTT."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from crowdwatch.timefmt import iso_utc, utc_day


@pytest.fixture
def far_time_zone() -> Iterator[None]:
    """The process runs at UTC+14 (Kiribati): a local-time mistake would show as another day."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Pacific/Kiritimati"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


def test_iso_utc_is_utc_with_milliseconds(far_time_zone: None) -> None:
    assert iso_utc(1_700_000_000.5) == "2023-11-14T22:13:20.500Z"
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"
    assert iso_utc(1_700_000_000.1234) == "2023-11-14T22:13:20.123Z"  # milliseconds, not rounded up


def test_utc_day_is_the_day_at_utc(far_time_zone: None) -> None:
    assert utc_day(1_700_000_000.5) == "2023-11-14"  # 2023-11-15 at 12:13 in Kiritimati
    assert utc_day(86_400 - 0.001) == "1970-01-01"
