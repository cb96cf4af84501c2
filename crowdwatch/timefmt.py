"""How crowdwatch writes a wall-clock time (a ``time.time()`` value) as text: the CSV's ``time_utc``
column, its file's day, and the ``time``/``since`` fields of MQTT payloads, always in UTC so that the
box's time zone never changes what it writes."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["iso_utc", "utc_day"]


def iso_utc(t: float) -> str:
    """ISO 8601 UTC with milliseconds: ``2026-11-29T04:44:43.120Z``."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_day(t: float) -> str:
    """The UTC day of ``t``: ``2026-11-29``."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")
