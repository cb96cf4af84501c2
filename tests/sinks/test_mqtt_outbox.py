"""The MQTT client's outbox on its own (no broker): bounded, oldest first out, and its account of what
paho holds, whichever thread reports first."""

from __future__ import annotations

import threading
import time

from crowdwatch.sinks.mqtt_messages import Message
from crowdwatch.sinks.mqtt_outbox import Outbox


def messages(*names: str) -> list[Message]:
    return [Message(f"t/{name}", name.encode(), False) for name in names]


def test_a_full_outbox_drops_the_oldest_and_says_how_many() -> None:
    outbox = Outbox(3)
    assert outbox.put(messages("a", "b")) == 0
    assert outbox.put(messages("c", "d", "e")) == 2  # a and b went
    assert len(outbox) == 3
    outbox.set_connected(True)
    assert [outbox.take() for _ in range(3)] == messages("c", "d", "e")
    assert outbox.put_back(messages("x")[0]) and len(outbox) == 1  # room again: first in line
    outbox.put(messages("y", "z"))
    assert not outbox.put_back(messages("w")[0])  # full: the one put back is the one dropped
    assert [outbox.take() for _ in range(3)] == messages("x", "y", "z")


def test_take_waits_for_the_connection_and_returns_none_once_stopping() -> None:
    outbox = Outbox(10)
    outbox.put(messages("a"))
    taken: list[Message | None] = []

    def take_twice() -> None:
        for _ in range(2):
            taken.append(outbox.take())

    taker = threading.Thread(target=take_twice, daemon=True)  # daemon: a failed assert never hangs the run
    taker.start()
    time.sleep(0.2)
    assert taken == []  # not connected: nothing is handed out
    outbox.set_connected(True)
    deadline = time.monotonic() + 5
    while not taken and time.monotonic() < deadline:
        time.sleep(0.01)
    assert taken == messages("a")
    outbox.drain(time.monotonic())  # stop: the second take() returns None
    taker.join(5)
    assert taken == [*messages("a"), None] and outbox.stopping


def test_a_message_done_before_it_is_recorded_as_handed_is_not_counted_as_waiting() -> None:
    outbox = Outbox(10)
    outbox.done(7)  # paho's thread: mid 7 sent before publish() returned to the publisher
    outbox.handed(7, 1)
    outbox.handed(8, 1)
    assert len(outbox) == 1
    outbox.done(8)
    assert len(outbox) == 0


def test_a_reconnect_forgets_only_unsent_qos_0_and_clear_counts_what_is_left() -> None:
    outbox = Outbox(10)
    outbox.handed(1, 0)
    outbox.handed(2, 1)
    outbox.handed(3, 0)
    outbox.put(messages("a", "b"))
    assert outbox.forget_unsent_qos0() == 2  # paho keeps QoS 1/2 across a reconnect, not QoS 0
    assert len(outbox) == 3
    assert outbox.set_connected(True) == (False, 2)
    assert outbox.set_connected(False) == (True, 2)
    assert outbox.clear() == 3 and len(outbox) == 0
