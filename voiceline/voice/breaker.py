"""A circuit breaker for the database, per web worker.

When the database stops answering, each webhook would wait for the checkout ping or a
connect timeout (seconds of silence for a caller) before the fallback TwiML. After one such
failure the breaker opens for a few seconds: webhooks skip the database and answer the
fallback at once, and a caller who presses the crisis key is put through to 988 without
waiting to store it. Then one request tries the database again.

This is process memory about the database's health, not call state: any worker can still
serve any step of any call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from voiceline.database import is_outage

COOLDOWN_SECONDS = 10.0


class DatabaseUnavailable(Exception):
    """The breaker is open: don't touch the database for this webhook."""


class Breaker:
    def __init__(self, cooldown: float = COOLDOWN_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.cooldown = cooldown
        self.clock = clock
        self._open_until = 0.0
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self.clock() < self._open_until

    def check(self) -> None:
        if self.is_open:
            raise DatabaseUnavailable("the database was unreachable moments ago")

    def observe(self, error: BaseException) -> None:
        if is_outage(error):
            with self._lock:
                self._open_until = self.clock() + self.cooldown
