"""Tell systemd how a daemon is doing (``sd_notify``): ready, status, watchdog, stopping.

Units run the daemons with ``Type=notify`` and ``WatchdogSec=``: a daemon sends ``READY=1`` once
it can serve (systemd holds back units ordered after it until then) and ``WATCHDOG=1`` from its
main loop at least every ``WatchdogSec`` (systemd kills and restarts it when the pings stop, so a
wedged loop does not go unnoticed). Outside systemd ``$NOTIFY_SOCKET`` is unset and every call
here does nothing, so daemons call it unconditionally::

    notifier = ServiceNotifier()
    watchdog = WatchdogPinger.from_environment(notifier)
    notifier.ready("serving on 127.0.0.1:8470")
    while running:
        ...
        watchdog.tick()
    notifier.stopping()
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

import sdnotify

NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"
WATCHDOG_USEC_ENV = "WATCHDOG_USEC"
WATCHDOG_PID_ENV = "WATCHDOG_PID"


class ServiceNotifier:
    """Sends state lines to systemd's notify socket; a no-op without ``$NOTIFY_SOCKET``."""

    def __init__(self) -> None:
        # sdnotify connects once, here; it never raises into the daemon (a lost datagram only
        # delays READY or costs a watchdog ping, which is systemd's to act on).
        self._notifier = sdnotify.SystemdNotifier() if os.environ.get(NOTIFY_SOCKET_ENV) else None

    @property
    def enabled(self) -> bool:
        return self._notifier is not None

    def ready(self, status: str | None = None) -> None:
        """The daemon serves now; with ``status``, one datagram so both change together."""
        self._send("READY=1" if status is None else f"READY=1\n{_status_line(status)}")

    def status(self, text: str) -> None:
        """Free-form line shown by ``systemctl status``."""
        self._send(_status_line(text))

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")

    def _send(self, message: str) -> None:
        if self._notifier is not None:
            self._notifier.notify(message)


def _status_line(text: str) -> str:
    # A newline would start another assignment (e.g. a forged READY=1) in the same datagram.
    return "STATUS=" + " ".join(text.splitlines())


def watchdog_interval_s(environ: Mapping[str, str] = os.environ) -> float | None:
    """How often to ping: half of ``$WATCHDOG_USEC``, as sd_watchdog_enabled(3) advises.

    None when no watchdog is asked for, or when ``$WATCHDOG_PID`` names another process (a
    child that inherited its parent's environment must not ping for it).
    """
    watchdog_pid = environ.get(WATCHDOG_PID_ENV)
    if watchdog_pid and watchdog_pid != str(os.getpid()):
        return None
    try:
        usec = int(environ.get(WATCHDOG_USEC_ENV, ""))
    except ValueError:
        return None
    return usec / 2 / 1_000_000 if usec > 0 else None


class WatchdogPinger:
    """Called on every pass of a main loop; sends ``WATCHDOG=1`` at most once per interval."""

    def __init__(self, notifier: ServiceNotifier, interval_s: float | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.notifier = notifier
        self.interval_s = interval_s
        self._clock = clock
        self._last_ping: float | None = None

    @classmethod
    def from_environment(cls, notifier: ServiceNotifier) -> WatchdogPinger:
        return cls(notifier, watchdog_interval_s())

    def tick(self) -> bool:
        """Ping if the interval has passed since the last ping (the first tick always pings)."""
        if self.interval_s is None:
            return False
        now = self._clock()
        if self._last_ping is not None and now - self._last_ping < self.interval_s:
            return False
        self.notifier.watchdog()
        self._last_ping = now
        return True


def ready_then_watchdog(notifier: ServiceNotifier, ready_status: str) -> Callable[[], None]:
    """A tick for a loop whose first pass means the daemon serves: READY=1 once, then watchdog pings."""
    watchdog = WatchdogPinger.from_environment(notifier)
    ready_sent = False

    def tick() -> None:
        nonlocal ready_sent
        if not ready_sent:
            notifier.ready(ready_status)
            ready_sent = True
        watchdog.tick()

    return tick
