"""Fixtures for the system tests: a real mosquitto with two logins (the box and a reader)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.mosquitto import BOX, BOX_PASSWORD, SUB, SUB_PASSWORD, Mosquitto, require_mosquitto


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A mosquitto on 127.0.0.1 that takes the box's and the reader's logins, stopped by its PID."""
    require_mosquitto()
    broker = Mosquitto(tmp_path / "broker", {BOX: BOX_PASSWORD, SUB: SUB_PASSWORD}).start()
    try:
        yield broker
    finally:
        broker.stop()
