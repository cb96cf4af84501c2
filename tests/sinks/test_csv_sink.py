"""CSV sink: header once, append across restarts, daily rotation, flush interval, partial-line repair."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from support.results import make_result

from crowdwatch.frames import Result
from crowdwatch.sinks.csv import CsvSink, header_columns, repair_partial_line

DAY1 = datetime(2026, 11, 24, 23, 59, 59, 500000, tzinfo=UTC).timestamp()
DAY2 = datetime(2026, 11, 25, 0, 0, 0, 250000, tzinfo=UTC).timestamp()


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def wall_day1() -> float:
    """The wall clock of the day the rows were captured: the sink opens that day's file first."""
    return DAY1


def sink_at(path: Path, zone_ids: Sequence[str] = (), clock: FakeClock | None = None) -> CsvSink:
    """A CsvSink whose wall clock is pinned to DAY1, so the suite passes on any date and in any TZ."""
    if clock is None:
        return CsvSink(path, zone_ids, wall_clock=wall_day1)
    return CsvSink(path, zone_ids, flush_interval_s=1.0, clock=clock, wall_clock=wall_day1)


def result(
    camera: str = "cam1", index: int = 0, captured_at: float = DAY1, count: int = 3, **kw: object
) -> Result:
    return make_result(camera, index, count=count, captured_at=captured_at, latency_s=0.1234567, **kw)


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_row_content_and_zone_columns(tmp_path: Path) -> None:
    with sink_at(tmp_path, ["door", "hall"]) as sink:
        sink.write(
            result(
                zone_counts={"door": 2, "hall": 1},
                zone_alerts={"door": True},
                smoothed_count=2.504,
                zone_smoothed={"door": 1.5, "hall": 1.0},
            )
        )
        sink.write(result(camera="cam2", index=7, count=0))
    path = tmp_path / "counts-2026-11-24.csv"
    assert path.read_text().splitlines()[0].split(",") == header_columns(["door", "hall"])
    rows = read_rows(path)
    assert rows[0] == {
        "time_utc": "2026-11-24T23:59:59.500Z",
        "camera": "cam1",
        "frame": "0",
        "count": "3",
        "count_smoothed": "2.50",
        "zone_door": "2",
        "smoothed_door": "1.50",
        "alert_door": "1",
        "zone_hall": "1",
        "smoothed_hall": "1.00",
        "alert_hall": "",
        "latency_s": "0.1235",
    }
    assert rows[1]["camera"] == "cam2" and rows[1]["zone_door"] == "" and rows[1]["frame"] == "7"
    assert rows[1]["count_smoothed"] == "" and rows[1]["smoothed_door"] == ""


def test_rows_are_buffered_until_the_flush_interval(tmp_path: Path) -> None:
    clock = FakeClock()
    sink = sink_at(tmp_path, clock=clock)
    sink.open()
    sink.write(result())
    path = tmp_path / "counts-2026-11-24.csv"
    assert len(read_rows(path)) == 0  # only the header is on disk
    clock.now += 0.5
    sink.tick()
    assert len(read_rows(path)) == 0
    clock.now += 0.6
    sink.tick()
    assert len(read_rows(path)) == 1
    sink.write(result(index=1))
    sink.close()
    assert [r["frame"] for r in read_rows(path)] == ["0", "1"]


def test_daily_rotation_by_capture_day_never_goes_back(tmp_path: Path) -> None:
    with sink_at(tmp_path) as sink:
        sink.write(result(index=0, captured_at=DAY1))
        sink.write(result(index=1, captured_at=DAY2))
        sink.write(result(index=2, captured_at=DAY1))  # late row of the old day: stays in the new file
    assert [r["frame"] for r in read_rows(tmp_path / "counts-2026-11-24.csv")] == ["0"]
    assert [r["frame"] for r in read_rows(tmp_path / "counts-2026-11-25.csv")] == ["1", "2"]


def test_restart_appends_without_repeating_the_header(tmp_path: Path) -> None:
    for index in range(3):
        with sink_at(tmp_path, ["door"]) as sink:
            sink.write(result(index=index))
    path = tmp_path / "counts-2026-11-24.csv"
    lines = path.read_text().splitlines()
    assert sum(line.startswith("time_utc") for line in lines) == 1
    assert [r["frame"] for r in read_rows(path)] == ["0", "1", "2"]


def test_changed_header_starts_a_new_file(tmp_path: Path) -> None:
    with sink_at(tmp_path, ["door"]) as sink:
        sink.write(result(index=0))
    with sink_at(tmp_path, ["door", "hall"]) as sink:
        sink.write(result(index=1))
    with sink_at(tmp_path, ["door", "hall"]) as sink:
        sink.write(result(index=2))
    old, new = tmp_path / "counts-2026-11-24.csv", tmp_path / "counts-2026-11-24.1.csv"
    assert [r["frame"] for r in read_rows(old)] == ["0"]
    assert "zone_hall" not in old.read_text()
    assert [r["frame"] for r in read_rows(new)] == ["1", "2"]


def test_partial_last_row_is_cut_on_open(tmp_path: Path) -> None:
    with sink_at(tmp_path) as sink:
        sink.write(result(index=0))
    path = tmp_path / "counts-2026-11-24.csv"
    with open(path, "ab") as f:
        f.write(b"2026-11-24T23:59:59.900Z,cam1,1,")  # what a crash mid-write leaves
    with sink_at(tmp_path) as sink:
        sink.write(result(index=2))
    assert path.read_bytes().endswith(b"\n")
    rows = read_rows(path)
    assert [r["frame"] for r in rows] == ["0", "2"]
    assert all(None not in r.values() and len(r) == len(header_columns([])) for r in rows)


def test_repair_partial_line_cases(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"a,b\n1,2\n3,")
    assert repair_partial_line(path) == 2 and path.read_bytes() == b"a,b\n1,2\n"
    assert repair_partial_line(path) == 0
    path.write_bytes(b"a,b")  # a header cut in half: nothing to keep, the sink rewrites the header
    assert repair_partial_line(path) == 3 and path.read_bytes() == b""


def test_half_written_header_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "counts-2026-11-24.csv"
    path.write_bytes(b"time_utc,cam")
    with sink_at(tmp_path) as sink:
        sink.write(result(index=5))
    assert path.read_text().splitlines()[0] == ",".join(header_columns([]))
    assert [r["frame"] for r in read_rows(path)] == ["5"]


def test_open_uses_the_injected_wall_clock_and_late_rows_go_to_the_open_file(tmp_path: Path) -> None:
    """Started on DAY2 (wall clock), a row captured on DAY1 (a lagging camera clock) is appended to
    DAY2's file with its own time: the documented rule, never reopening an earlier day."""
    with CsvSink(tmp_path, wall_clock=lambda: DAY2) as sink:
        sink.write(result(index=0, captured_at=DAY1))
    assert not (tmp_path / "counts-2026-11-24.csv").exists()
    rows = read_rows(tmp_path / "counts-2026-11-25.csv")
    assert [(r["frame"], r["time_utc"]) for r in rows] == [("0", "2026-11-24T23:59:59.500Z")]


def test_new_zone_columns_go_to_a_new_file_and_no_buffered_row_is_lost(tmp_path: Path) -> None:
    """A config reload that adds a zone: rows buffered under the old header are flushed to the old file,
    later rows go to a ``.1`` file whose header has the new columns."""
    clock = FakeClock()
    sink = sink_at(tmp_path, ["door"], clock)
    sink.open()
    sink.write(result(index=0, zone_counts={"door": 1}))
    first = sink.path
    sink.set_zone_ids(["door", "bar"])
    sink.write(result(index=1, zone_counts={"door": 2, "bar": 3}))
    sink.set_zone_ids(["door", "bar"])  # the same columns: nothing changes
    sink.close()
    assert first is not None and sink.path is not None and sink.path != first
    assert sink.path.name.endswith(".1.csv")
    old, new = (list(csv.reader(path.open())) for path in (first, sink.path))
    assert old[0] == header_columns(["door"]) and [row[2] for row in old[1:]] == ["0"]
    assert new[0] == header_columns(["door", "bar"]) and [row[2] for row in new[1:]] == ["1"]
    assert new[1][new[0].index("zone_bar")] == "3"
