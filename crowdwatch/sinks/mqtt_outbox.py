"""The MQTT client's bounded outbox: messages waiting for the broker, and those handed to paho that it
has not yet sent (QoS 0) or the broker has not yet acknowledged (QoS 1, 2).

One condition guards both, and the connection state the publisher waits on, so that the sink thread
(:meth:`Outbox.put`), the publisher thread (:meth:`Outbox.take`) and paho's thread (:meth:`Outbox.done`,
:meth:`Outbox.set_connected`) always see one consistent picture. Nothing here touches the network or
counts losses: the methods return what was dropped and :class:`~crowdwatch.sinks.mqtt_client.MqttClient`
reports it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence

from crowdwatch.sinks.mqtt_messages import Message

__all__ = ["MAX_HANDED", "Outbox"]

#: Most messages handed to paho and not yet sent (QoS 0) or acknowledged (QoS 1, 2).
MAX_HANDED = 1000


class Outbox:
    """At most ``size`` messages waiting (the oldest go first), at most :data:`MAX_HANDED` inside paho."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._cond = threading.Condition()
        self._waiting: deque[Message] = deque()
        self._handed: dict[int, int] = {}  # mid -> QoS: inside paho, not yet sent or acknowledged
        self._early: set[int] = set()  # mids paho finished before publish() returned to us
        self._connected = False
        self._stopping = False

    def __len__(self) -> int:
        """Messages waiting, and handed to paho but not yet done."""
        return len(self._waiting) + len(self._handed)

    @property
    def connected(self) -> bool:
        return self._connected

    def put(self, messages: Sequence[Message]) -> int:
        """Queue ``messages`` behind those waiting; returns how many of the oldest went to make room."""
        dropped = 0
        with self._cond:
            for message in messages:
                if len(self._waiting) >= self.size:
                    self._waiting.popleft()
                    dropped += 1
                self._waiting.append(message)
            self._cond.notify_all()
        return dropped

    def take(self) -> Message | None:
        """The next message to hand to paho, once connected and paho has room; None once stopping."""
        with self._cond:
            while not self._stopping and not (
                self._waiting and self._connected and len(self._handed) < MAX_HANDED
            ):
                self._cond.wait(0.5)
            return None if self._stopping else self._waiting.popleft()

    def put_back(self, message: Message) -> bool:
        """``message`` could not be handed (the connection went a moment ago): first in line again.
        False when the outbox filled meanwhile and it is dropped."""
        with self._cond:
            if len(self._waiting) >= self.size:
                return False
            self._waiting.appendleft(message)
            return True

    def pause(self, seconds: float) -> None:
        """Wait up to ``seconds``, or until the outbox or the connection changes."""
        with self._cond:
            self._cond.wait(seconds)

    def handed(self, mid: int, qos: int) -> None:
        """paho took message ``mid`` (unless it is already done: then forget it)."""
        with self._cond:
            if mid in self._early:
                self._early.discard(mid)
            else:
                self._handed[mid] = qos

    def done(self, mid: int) -> None:
        """paho says message ``mid`` was sent (QoS 0) or acknowledged (QoS 1, 2)."""
        with self._cond:
            if self._handed.pop(mid, None) is None:
                self._early.add(mid)
            self._cond.notify_all()

    def forget_unsent_qos0(self) -> int:
        """On a reconnect: paho dropped the QoS 0 messages it had not sent when the connection went.
        Returns how many."""
        with self._cond:
            lost = [mid for mid, qos in self._handed.items() if qos == 0]
            for mid in lost:
                del self._handed[mid]
            self._early.clear()
        return len(lost)

    def set_connected(self, connected: bool) -> tuple[bool, int]:
        """(was it connected, messages waiting) as the connection comes or goes."""
        with self._cond:
            was, self._connected = self._connected, connected
            self._cond.notify_all()
            return was, len(self._waiting)

    def drain(self, until: float) -> None:
        """Wait, while connected and until ``until`` (``time.monotonic()``), for every message to be done;
        then stop :meth:`take`."""
        with self._cond:
            while (self._waiting or self._handed) and self._connected and time.monotonic() < until:
                self._cond.wait(0.05)
            self._stopping = True
            self._cond.notify_all()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def clear(self) -> int:
        """Empty the outbox; returns how many messages it still held (never delivered)."""
        with self._cond:
            left = len(self)
            self._waiting.clear()
            self._handed.clear()
            return left
