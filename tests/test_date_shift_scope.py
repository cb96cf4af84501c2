"""The folders that CI's date-shift rerun skips hold no test that reads the clock or names a date.

`scripts/bootstrap.sh test-date-shift` reruns the suite with the wall clock years ahead and a far time
zone, so that a test written to pass only on its own day fails in CI. It skips the folders whose tests
train, evaluate and convert networks (over two thirds of the rerun's time) because those tests compare
weights, counts and files, never dates. This test keeps that true: a test file there that reads the
wall clock or writes a date makes it fail, and the folder goes back into the rerun (or the test moves).
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BOOTSTRAP = REPO / "scripts" / "bootstrap.sh"

# What a date-bound test looks like: the wall clock, calendar dates, time zones, or a date literal.
CLOCK = re.compile(
    r"\bdatetime\b|\bdate\.today\b|\btime\.time(_ns)?\b|\bstrftime\b|\blocaltime\b|\bgmtime\b"
    r"|\bzoneinfo\b|\bTZ\b|\b(19|20)\d\d-\d\d-\d\d\b"
)


def skipped_folders() -> list[str]:
    """The folders the date-shift rerun passes to pytest's --ignore, read from bootstrap.sh itself."""
    text = BOOTSTRAP.read_text()
    branch = text.split('elif [ "$mode" = test-date-shift ]; then', 1)[1].split("\nelse", 1)[0]
    return re.findall(r"--ignore (tests/\S+)", branch)


def clock_reads(source: str) -> list[str]:
    return [
        f"line {number}: {line.strip()}"
        for number, line in enumerate(source.splitlines(), 1)
        if CLOCK.search(line)
    ]


def test_the_skipped_folders_do_not_read_the_clock() -> None:
    folders = skipped_folders()
    assert folders, "found no --ignore in the test-date-shift branch of scripts/bootstrap.sh"
    found = {
        str(path.relative_to(REPO)): reads
        for folder in folders
        if folder != "tests/system"  # its servers and subprocesses keep the real clock anyway
        for path in sorted((REPO / folder).rglob("*.py"))
        if (reads := clock_reads(path.read_text()))
    }
    assert not found, (
        "these tests read the clock or name a date, so they must run in the date-shift rerun: "
        f"take their folder out of the --ignore list in scripts/bootstrap.sh, or move them: {found}"
    )


def test_the_check_sees_a_date_bound_test() -> None:
    """Not vacuous: the usual ways of binding a test to its day are all caught, and ordinary code is not."""
    bound = [
        "today = datetime.now(UTC).date()",
        "assert meta['saved_at'].startswith('2026-11-24')",
        "stamp = time.time()",
        "name = time.strftime('%Y%m%d')",
        "os.environ['TZ'] = 'UTC'",
        "from zoneinfo import ZoneInfo",
    ]
    assert all(clock_reads(line) for line in bound)
    assert not clock_reads("validate(update, data)\nstart = time.perf_counter()\nsteps = 2026\n")
