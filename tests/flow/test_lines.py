"""Counting lines: side conventions, one count per crossing whatever the wobble, segment ends, names."""

from __future__ import annotations

import pytest

from crowdwatch.lines import CountingLine, LineCounter

# Left to right across y = 100: "in" = walking down the image (from the left of A->B).
LINE = CountingLine("gate", (0.0, 100.0), (200.0, 100.0), "enter", "leave", band_px=4.0)


def run(counter: LineCounter, track: int, ys: list[float], x: float = 100.0) -> list[str]:
    out = []
    for i in range(1, len(ys)):
        c = counter.step(track, (x, ys[i - 1]), (x, ys[i]), float(i))
        if c is not None:
            out.append(c.name)
    return out


def test_direction_is_the_side_a_track_comes_from() -> None:
    counter = LineCounter(LINE)
    assert run(counter, 1, [60, 80, 95, 105, 120]) == ["enter"]  # from above (left of A->B): in
    assert run(counter, 2, [140, 110, 90, 70]) == ["leave"]
    assert counter.totals == {"in": 1, "out": 1}
    swapped = LineCounter(CountingLine("gate", (200.0, 100.0), (0.0, 100.0)))
    assert run(swapped, 1, [60, 140]) == ["out"]  # A and B swapped: directions swap


@pytest.mark.parametrize(
    ("ys", "expected"),
    [
        ([90, 98, 103, 97, 102, 99, 103, 96], []),  # wobbles inside the band: never leaves its side
        ([90, 98, 103, 97, 110, 99, 103, 120], ["enter"]),  # crosses once, wobbling on the way
        ([90, 110, 101, 99, 110, 130], ["enter"]),  # back into the band and out again on the far side
        ([90, 110, 90, 110], ["enter", "leave", "enter"]),  # really crosses three times: three counts
    ],
)
def test_hysteresis_counts_a_wobbling_track_once(ys: list[float], expected: list[str]) -> None:
    assert run(LineCounter(LINE), 7, ys) == expected


def test_a_track_passing_beside_the_segment_is_not_counted() -> None:
    counter = LineCounter(LINE)
    assert run(counter, 1, [60, 140], x=230.0) == []  # beyond B
    assert run(counter, 2, [60, 140], x=-5.0) == []  # before A
    assert run(counter, 3, [60, 140], x=199.0) == ["enter"]


def test_a_diagonal_step_is_judged_where_it_cuts_the_line() -> None:
    counter = LineCounter(LINE)
    # from (250, 50) to (150, 150): cuts y = 100 at x = 200, the segment's end: counted
    assert counter.step(1, (250.0, 50.0), (150.0, 150.0), 1.0) is not None
    # from (300, 50) to (200, 150): cuts at x = 250, beside the segment: not counted
    assert counter.step(2, (300.0, 50.0), (200.0, 150.0), 1.0) is None


def test_tracks_are_independent_and_forgotten() -> None:
    counter = LineCounter(LINE)
    counter.step(1, (100.0, 50.0), (100.0, 60.0), 1.0)
    counter.step(2, (100.0, 150.0), (100.0, 140.0), 1.0)
    assert counter.step(1, (100.0, 60.0), (100.0, 120.0), 2.0) is not None
    counter.forget(2)
    assert counter.step(2, (100.0, 90.0), (100.0, 60.0), 2.0) is None  # its earlier side is gone
    crossing = counter.step(1, (100.0, 120.0), (100.0, 50.0), 3.0)
    assert crossing is not None and (crossing.direction, crossing.name, crossing.track) == ("out", "leave", 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"b": (0.0, 100.0)}, "must differ"),
        ({"in_name": "x", "out_name": "x"}, "in and out must differ"),
        ({"band_px": -1.0}, "band_px"),
    ],
)
def test_bad_lines_are_refused(kwargs: dict[str, object], message: str) -> None:
    spec: dict[str, object] = {"id": "g", "a": (0.0, 100.0), "b": (10.0, 100.0), **kwargs}
    with pytest.raises(ValueError, match=message):
        CountingLine(**spec)  # type: ignore[arg-type]
