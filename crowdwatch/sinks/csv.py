"""CSV sink: one row per processed frame, one file per UTC day, safe against kill -9.

Rows are buffered in memory and written with one ``os.write`` per flush, followed by ``fsync``, at
most ``flush_interval_s`` apart, so a crash loses at most the rows of the last interval. A row is
never left half-written: a failed write is truncated back, and a trailing partial line left by a
crash (power loss in the middle of a write) is cut off when the file is reopened. Restarts append to
the day's file when its header matches; when the columns changed (zones edited), rows go to a new
file ``counts-YYYY-MM-DD.N.csv`` rather than under a header that does not describe them.

Which file a row goes to: the file of the row's capture day (UTC), but the sink never goes back a
day. A row whose capture day is *earlier* than the open file's day (a camera whose clock lags, a row
buffered across midnight) is appended to the open, later file, keeping its own ``time_utc``: files
are only ever appended to in time order, and a closed day's file is never reopened to add a row
after it was rotated away from. Readers that need rows by capture day should group by ``time_utc``,
not by file name.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from crowdwatch.frames import Result
from crowdwatch.logthrottle import LogThrottle
from crowdwatch.sinks.base import SinkBase
from crowdwatch.timefmt import iso_utc, utc_day

logger = logging.getLogger(__name__)

FIXED_COLUMNS = ("time_utc", "camera", "frame", "count")
#: The camera's count smoothed over its window (``smoothing.window_s``), right after the raw count.
SMOOTHED_COLUMN = "count_smoothed"
LATENCY_COLUMN = "latency_s"
#: How far back from the end of a file to look for the last complete line.
_TAIL_CHUNK = 64 * 1024


def header_columns(zone_ids: Sequence[str], line_ids: Sequence[str] = ()) -> list[str]:
    """Columns for a CSV whose cameras have the zones ``zone_ids`` and the counting lines ``line_ids``
    (unions over cameras, in order).

    Per zone: ``zone_<id>`` (raw count), ``smoothed_<id>`` and ``alert_<id>`` (a prefix each, so no
    zone id can produce another zone's column name); per line: ``in_<id>`` and ``out_<id>``, the
    crossings of that frame each way."""
    zone_columns = []
    for zone_id in zone_ids:
        zone_columns += [f"zone_{zone_id}", f"smoothed_{zone_id}", f"alert_{zone_id}"]
    line_columns = [f"{way}_{line_id}" for line_id in line_ids for way in ("in", "out")]
    return [*FIXED_COLUMNS, SMOOTHED_COLUMN, *zone_columns, *line_columns, LATENCY_COLUMN]


def _decimal(value: float | None) -> str:
    """A smoothed count with two decimals (``""`` when there is none)."""
    return "" if value is None else f"{value:.2f}"


def repair_partial_line(path: Path) -> int:
    """Cut off a trailing line that has no newline (a row cut by a crash); return bytes removed."""
    with open(path, "r+b") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        end = size
        while end > 0:
            start = max(0, end - _TAIL_CHUNK)
            f.seek(start)
            chunk = f.read(end - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        else:
            keep = 0
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
        return size - keep


def _first_line(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.readline()


#: Why the CSV sink loses rows: a flush that did not reach the disk (full, read-only, gone) loses every
#: row it held.
WRITE_ERROR = "write_error"


class CsvSink(SinkBase):
    """Append rows to ``<directory>/<prefix>-YYYY-MM-DD[.N].csv`` (day of the frame's capture, UTC)."""

    LOSS_REASONS = (WRITE_ERROR,)

    def __init__(
        self,
        directory: str | Path,
        zone_ids: Sequence[str] = (),
        *,
        line_ids: Sequence[str] = (),
        flush_interval_s: float = 1.0,
        prefix: str = "counts",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` paces the flushes (monotonic); ``wall_clock`` names the file opened before the first
        row (the current UTC day). Both are injectable so tests do not depend on today's date."""
        if flush_interval_s <= 0:
            raise ValueError(f"flush_interval_s must be > 0, but got {flush_interval_s}")
        self.directory = Path(directory)
        self.zone_ids = list(dict.fromkeys(zone_ids))
        self.line_ids = list(dict.fromkeys(line_ids))
        self.columns = header_columns(self.zone_ids, self.line_ids)
        self.flush_interval_s = flush_interval_s
        self.prefix = prefix
        self._clock = clock
        self._wall_clock = wall_clock
        self._header = self._format(self.columns).encode()
        self._fd: int | None = None
        self._day: str | None = None
        self.path: Path | None = None
        self._pending: list[str] = []
        self._last_flush = clock()
        self._log = LogThrottle(logger, clock=clock)  # a full disk fails every flush: once a minute

    # -- Sink protocol -------------------------------------------------------------------------
    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._open_day(utc_day(self._wall_clock()))

    def write(self, result: Result) -> None:
        day = utc_day(result.captured_at)
        if self._day is None or day > self._day:  # never go back a day for a late row
            self.flush()
            self._open_day(day)
        self._pending.append(self._format(self._row(result)))
        self.tick()

    def tick(self) -> None:
        if self._pending and self._clock() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def close(self) -> None:
        self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def set_zone_ids(self, zone_ids: Sequence[str], line_ids: Sequence[str] | None = None) -> None:
        """A config reload changed the zones (call on the sink thread): when the columns change, the
        rows buffered so far are flushed under the old header and later rows go to a file whose header
        matches (the day's file of these columns, or a new ``.N`` one), never under the wrong header."""
        zone_ids = list(dict.fromkeys(zone_ids))
        line_ids = self.line_ids if line_ids is None else list(dict.fromkeys(line_ids))
        if zone_ids == self.zone_ids and line_ids == self.line_ids:
            return
        self.flush()
        self.zone_ids, self.line_ids = zone_ids, line_ids
        self.columns = header_columns(zone_ids, line_ids)
        self._header = self._format(self.columns).encode()
        if self._day is not None:
            self._open_day(self._day)

    # -- internals -----------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every buffered row with one write and fsync; on failure cut the file back."""
        self._last_flush = self._clock()
        if not self._pending or self._fd is None:
            return
        data = "".join(self._pending).encode()
        rows = len(self._pending)
        self._pending.clear()
        before = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            os.fsync(self._fd)
            if self.error is not None:
                lost = self.losses()[WRITE_ERROR]
                logger.info("csv %s: writing again (%d rows lost in all)", self.path, lost)
                self._log.reset("flush")
            self.error = None
        except OSError as exc:
            self.lose(rows, WRITE_ERROR, error=f"{exc.strerror or exc} ({self.path})")
            self._log.log(
                "flush",
                logging.ERROR,
                "csv %s: lost %d rows: %s (%d lost in all)",
                self.path,
                rows,
                exc.strerror or exc,
                self.losses()[WRITE_ERROR],
            )
            try:
                os.ftruncate(self._fd, before)
            except OSError:
                logger.exception("csv %s: could not cut back a partial write", self.path)

    def _open_day(self, day: str) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.directory.mkdir(parents=True, exist_ok=True)
        for n in range(1000):
            suffix = "" if n == 0 else f".{n}"
            path = self.directory / f"{self.prefix}-{day}{suffix}.csv"
            if path.exists():
                removed = repair_partial_line(path)
                if removed:
                    logger.warning("csv %s: removed a partial last row (%d bytes)", path, removed)
                if path.stat().st_size and _first_line(path) != self._header:
                    continue  # other columns: leave that file alone
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if os.fstat(self._fd).st_size == 0:
                os.write(self._fd, self._header)
                os.fsync(self._fd)
            self._day, self.path = day, path
            logger.info("csv: writing rows to %s", path)
            return
        raise RuntimeError(f"csv: no usable file name for {day} in {self.directory}")

    def _row(self, result: Result) -> list[object]:
        zones: list[object] = []
        for zone_id in self.zone_ids:
            count = result.zone_counts.get(zone_id)
            smoothed = result.zone_smoothed.get(zone_id)
            alert = result.zone_alerts.get(zone_id)
            zones += ["" if count is None else count, _decimal(smoothed), "" if alert is None else int(alert)]
        lines: list[object] = []
        flow = result.flow
        for line_id in self.line_ids:  # "" where this camera has no such line
            lines += (
                list(flow.increments(line_id)) if flow is not None and line_id in flow.totals else ["", ""]
            )
        return [
            iso_utc(result.captured_at),
            result.camera,
            result.index,
            result.count,
            _decimal(result.smoothed_count),
            *zones,
            *lines,
            f"{result.latency_s:.4f}",
        ]

    @staticmethod
    def _format(values: Sequence[object]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(values)
        return buffer.getvalue()
