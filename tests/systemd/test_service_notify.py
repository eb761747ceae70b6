"""``eais_plumbing.service_notify`` against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from eais_plumbing.service_notify import (
    ServiceNotifier,
    WatchdogPinger,
    ready_then_watchdog,
    watchdog_interval_s,
)
from controller.clock import US_PER_S, FakeClock


def _seconds(clock: FakeClock):
    return lambda: clock.now_us() / US_PER_S


def test_ready_sends_exactly_ready_1(notify_socket):
    ServiceNotifier().ready()

    assert notify_socket.receive() == "READY=1"


def test_ready_with_a_status_sends_both_in_one_datagram(notify_socket):
    ServiceNotifier().ready("serving on 127.0.0.1:8470")

    assert notify_socket.receive() == "READY=1\nSTATUS=serving on 127.0.0.1:8470"


def test_status_stopping_and_watchdog_send_their_lines(notify_socket):
    notifier = ServiceNotifier()

    notifier.status("3 workers")
    notifier.watchdog()
    notifier.stopping()

    assert [notify_socket.receive() for _ in range(3)] == ["STATUS=3 workers", "WATCHDOG=1", "STOPPING=1"]


def test_a_newline_in_a_status_cannot_forge_another_assignment(notify_socket):
    ServiceNotifier().status("node lost\nREADY=1")

    assert notify_socket.receive() == "STATUS=node lost READY=1"


def test_an_abstract_notify_socket_is_reached_too(monkeypatch):
    name = f"eais-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)
        listener.settimeout(1.0)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)

        ServiceNotifier().watchdog()

        assert listener.recv(64) == b"WATCHDOG=1"


def test_without_notify_socket_every_call_is_a_quiet_no_op(notify_socket, monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET")
    notifier = ServiceNotifier()

    notifier.ready("x")
    notifier.status("y")
    notifier.watchdog()
    notifier.stopping()

    assert not notifier.enabled
    assert notify_socket.receive(timeout_s=0.2) is None


@pytest.mark.parametrize(("environ", "expected"), [
    ({"WATCHDOG_USEC": "30000000"}, 15.0),
    ({"WATCHDOG_USEC": "200000"}, 0.1),
    ({}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
])
def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process_only(environ, expected):
    assert watchdog_interval_s(environ) == expected


def test_pinger_pings_on_the_first_tick_then_at_most_once_per_interval(notify_socket):
    clock = FakeClock()
    pinger = WatchdogPinger(ServiceNotifier(), interval_s=15.0, clock=_seconds(clock))

    pinged = [pinger.tick()]
    for _ in range(3):
        clock.advance(5)
        pinged.append(pinger.tick())

    assert pinged == [True, False, False, True]
    assert [notify_socket.receive(), notify_socket.receive()] == ["WATCHDOG=1", "WATCHDOG=1"]
    assert notify_socket.receive(timeout_s=0.2) is None


def test_pinger_without_a_watchdog_never_pings(notify_socket):
    pinger = WatchdogPinger.from_environment(ServiceNotifier())

    assert [pinger.tick() for _ in range(3)] == [False, False, False]
    assert notify_socket.receive(timeout_s=0.2) is None


def test_ready_then_watchdog_sends_ready_once_then_pings_at_the_watchdog_pace(notify_socket, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    tick = ready_then_watchdog(ServiceNotifier(), "serving")

    tick()
    tick()

    assert [notify_socket.receive(), notify_socket.receive()] == ["READY=1\nSTATUS=serving", "WATCHDOG=1"]
    assert notify_socket.receive(timeout_s=0.2) is None
