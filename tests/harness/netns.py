"""Test hosts on one machine: network namespaces joined by veth links, all made (and removed) by the test.

Link ``n`` joins two ends, each a namespace or the host itself (``None``), on the subnet
``10.(210+n).S.0/24`` (end 1 and end 2), where ``S`` comes from this process's id so that concurrent
runs on one machine do not meet. ``cut``/``mend`` take one end's interface down and up again: packets
into the link vanish, as on a cable pulled out (no reset, no refusal). Needs root and iproute2.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

import pytest


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class TestHosts:
    __test__ = False  # a helper, not a test class

    tag: int = field(default_factory=lambda: os.getpid() % 10000)
    namespaces: list[str] = field(default_factory=list)
    host_interfaces: list[str] = field(default_factory=list)
    interfaces: dict[tuple[int, int], tuple[str | None, str]] = field(default_factory=dict)

    @classmethod
    def make(cls, *names: str) -> TestHosts:
        """Namespaces ``eais-NAME-TAG`` with loopback up; skips the test where the machine cannot make them."""
        if os.geteuid() != 0 or shutil.which("ip") is None:
            pytest.skip("network namespaces need root and iproute2's `ip`")
        hosts = cls()
        try:
            for name in names:
                namespace = f"eais-{name}-{hosts.tag}"
                ip("netns", "add", namespace)
                hosts.namespaces.append(namespace)
                ip("-n", namespace, "link", "set", "lo", "up")
        except subprocess.CalledProcessError as error:
            hosts.close()
            pytest.skip(f"this machine does not allow network namespaces: {error.stderr.strip()}")
        return hosts

    def namespace(self, name: str) -> str:
        return f"eais-{name}-{self.tag}"

    def address(self, link: int, end: int) -> str:
        return f"10.{210 + link}.{self.tag % 250}.{end}"

    def exec_in(self, namespace: str) -> tuple[str, ...]:
        return ("ip", "netns", "exec", namespace)

    def link(self, link: int, first: str | None, second: str | None) -> None:
        """A veth link between ``first`` and ``second`` (namespaces, or None for the host)."""
        names = (f"e{self.tag}l{link}a", f"e{self.tag}l{link}b")
        ip("link", "add", names[0], "type", "veth", "peer", "name", names[1])
        for end, (name, namespace) in enumerate(zip(names, (first, second)), start=1):
            if namespace:
                ip("link", "set", name, "netns", namespace)
            else:
                self.host_interfaces.append(name)
            prefix = ("-n", namespace) if namespace else ()
            ip(*prefix, "addr", "add", f"{self.address(link, end)}/24", "dev", name)
            ip(*prefix, "link", "set", name, "up")
            self.interfaces[(link, end)] = (namespace, name)

    def cut(self, link: int, end: int) -> None:
        self._set(link, end, "down")

    def mend(self, link: int, end: int) -> None:
        self._set(link, end, "up")

    def close(self) -> None:
        for namespace in self.namespaces:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        for name in self.host_interfaces:
            subprocess.run(["ip", "link", "del", name], capture_output=True)

    def _set(self, link: int, end: int, state: str) -> None:
        namespace, name = self.interfaces[(link, end)]
        ip(*(("-n", namespace) if namespace else ()), "link", "set", name, state)
