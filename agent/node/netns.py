"""Private network namespaces for TensorFlow workers, and sockets made inside them.

TensorFlow's gRPC server binds the wildcard address, so "only on loopback" needs a network of
its own: the agent makes a namespace with nothing but ``lo`` in it (in a short-lived thread, since
namespaces belong to threads), keeps a file descriptor for it, and the worker enters it with
``setns`` before it starts. The worker's port then exists only there; the gateway reaches it with
a socket created by another short-lived thread that entered the same namespace, and a socket
stays in the namespace it was made in wherever it is used afterwards.

Needs CAP_SYS_ADMIN and CAP_NET_ADMIN (root, or the systemd unit's capability set).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
IFREQ = "16sh14x"  # struct ifreq: name, flags, padding to 32 bytes

_libc = ctypes.CDLL(None, use_errno=True)

NAMESPACES_HOW_TO = (
    "each TensorFlow worker needs its own network namespace (its port would otherwise be open on every "
    "interface): run eais-node as root, or with CAP_SYS_ADMIN and CAP_NET_ADMIN (the systemd unit keeps them); "
    "or pass --worker-isolation none to run workers on the host network, reachable by anyone who can reach this host"
)


class NamespaceError(OSError):
    """A namespace call failed; the message names the call and the reason."""


def _check(result: int, call: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise NamespaceError(errno, f"{call} failed: {os.strerror(errno)}")


def unshare_network() -> None:
    """Move the calling thread into a new, empty network namespace."""
    _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")


def enter_namespace(fd: int) -> None:
    """Move the calling thread into the network namespace ``fd`` refers to."""
    _check(_libc.setns(fd, CLONE_NEWNET), "setns(CLONE_NEWNET)")


def bring_loopback_up() -> None:
    """``ip link set lo up`` in the calling thread's namespace (a new one starts with lo down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack(IFREQ, b"lo", 0)
        flags = struct.unpack(IFREQ, fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack(IFREQ, b"lo", flags | IFF_UP))


def in_fresh_thread(work: Callable[[], T]) -> T:
    """Run ``work`` in a thread of its own that ends with it, so a namespace it entered dies with it.

    Never a pooled thread: a reused thread would carry the namespace into unrelated work.
    """
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # noqa: BLE001 - handed to the caller below
            outcome["error"] = error

    thread = threading.Thread(target=run, name="netns", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


class NetworkNamespace:
    """A private network namespace holding only ``lo`` (up); it lives while this object is open."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def create(cls) -> NetworkNamespace:
        def make() -> int:
            unshare_network()
            bring_loopback_up()
            return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)

        return cls(in_fresh_thread(make))

    @property
    def inode(self) -> int:
        return os.fstat(self.fd).st_ino

    def connect(self, port: int, timeout_s: float) -> socket.socket:
        """A blocking TCP socket connected to 127.0.0.1:``port`` inside this namespace."""
        def dial() -> socket.socket:
            enter_namespace(self.fd)
            sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
            sock.settimeout(None)  # the relay wants blocking sockets
            return sock

        return in_fresh_thread(dial)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def namespaces_unavailable_reason() -> str | None:
    """None when this process may make worker namespaces; otherwise why not and how to fix it."""
    try:
        NetworkNamespace.create().close()
    except OSError as error:
        return f"{error.strerror or error}: {NAMESPACES_HOW_TO}"
    return None
