"""A private network of Linux network namespaces, so that workers run as on separate hosts.

:class:`PrivateNetwork` makes a bridge in this (the root) namespace with the first address
of a free private ``/24`` (10.x.y.1: the "server" address that Kafka, PostgreSQL and the
provider fakes listen on), and :meth:`PrivateNetwork.host` one namespace per "host",
joined to the bridge by a veth pair, with the next address. A process started under
:attr:`Host.wrap` (``ip netns exec NAME ...``) has its own loopback, its own interfaces
and ports, and reaches the rest only through the bridge: 127.0.0.1 there is nobody
else's. :meth:`PrivateNetwork.close` deletes every namespace and link it made.

Names carry the test run's process id (``nudge-<pid>-<host>``, bridge ``nub<pid>``), so
two runs never collide; links and namespaces of runs whose process is gone (killed before
their clean-up) are deleted when the next network is made. Needs root and iproute2:
:func:`unavailable` says why not, for a skip.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import re
import shutil
import subprocess
from dataclasses import dataclass

NS_PREFIX = "nudge-"
BRIDGE_PREFIX = "nub"


class NetworkError(RuntimeError):
    """An ``ip`` command failed; the message has its output."""


def ip(*args: str, check: bool = True) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {result.stderr.strip() or result.stdout}")
    return result.stdout


def unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None if they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); run as root, as CI does"
    if not shutil.which("ip"):
        return "no `ip` command (install iproute2)"
    probe = f"{NS_PREFIX}{os.getpid()}-probe"
    try:
        ip("netns", "add", probe)
    except NetworkError as exc:
        return f"cannot make a network namespace: {exc}"
    ip("netns", "del", probe, check=False)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale() -> None:
    """Delete the namespaces and bridges of test runs whose process has exited."""
    for line in ip("netns", "list", check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        match = re.fullmatch(rf"{NS_PREFIX}(\d+)-\w+", name)
        if match and not _alive(int(match.group(1))):
            ip("netns", "del", name, check=False)
    for line in ip("-o", "link", "show", "type", "bridge", check=False).splitlines():
        match = re.match(rf"\d+: ({BRIDGE_PREFIX}(\d+))[:@]", line)
        if match and not _alive(int(match.group(2))):
            ip("link", "del", match.group(1), check=False)


def free_subnet() -> ipaddress.IPv4Network:
    """A 10.x.y.0/24 that no local address or route overlaps."""
    taken = []
    for line in (ip("-4", "-o", "addr", "show") + ip("-4", "route", "show")).splitlines():
        for word in line.split():
            with contextlib.suppress(ValueError):
                if "/" in word or word[0].isdigit():
                    taken.append(ipaddress.ip_network(word, strict=False))
    rng = random.Random()
    for _ in range(200):
        net = ipaddress.ip_network(f"10.{rng.randint(100, 250)}.{rng.randint(0, 255)}.0/24")
        if not any(net.overlaps(t) for t in taken if t.prefixlen > 0):
            return net
    raise NetworkError("no free 10.x.y.0/24 subnet")


@dataclass(frozen=True)
class Host:
    """One namespace: its name, its address on the private network, and the command
    prefix that runs a program inside it."""

    name: str
    address: str

    @property
    def wrap(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.name)


class PrivateNetwork:
    """A bridge with the server address, and namespaces ("hosts") joined to it."""

    def __init__(self) -> None:
        self.tag = str(os.getpid())
        self.bridge = f"{BRIDGE_PREFIX}{self.tag}"
        self.subnet = free_subnet()
        addresses = self.subnet.hosts()
        self.server = str(next(addresses))
        self._addresses = addresses
        self.hosts: list[Host] = []
        self._made_bridge = False

    def open(self) -> PrivateNetwork:
        sweep_stale()
        ip("link", "add", self.bridge, "type", "bridge")
        self._made_bridge = True
        ip("addr", "add", f"{self.server}/{self.subnet.prefixlen}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        return self

    def host(self, label: str) -> Host:
        """A new namespace ``label`` (letters and digits) on the network, loopback up."""
        name = f"{NS_PREFIX}{self.tag}-{label}"
        outer = f"nuv{self.tag}{label}"[:15]
        address = str(next(self._addresses))
        ip("netns", "add", name)
        self.hosts.append(Host(name, address))
        ip("link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", name)
        ip("link", "set", outer, "master", self.bridge, "up")
        ip("-n", name, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        ip("-n", name, "link", "set", "eth0", "up")
        ip("-n", name, "link", "set", "lo", "up")
        return self.hosts[-1]

    def close(self) -> None:
        """Delete every namespace (its veth end goes with it, and so the pair) and the
        bridge; safe to call twice, and after a half-made network."""
        for host in self.hosts:
            ip("netns", "del", host.name, check=False)
        self.hosts.clear()
        if self._made_bridge:
            ip("link", "del", self.bridge, check=False)
            self._made_bridge = False

    def __enter__(self) -> PrivateNetwork:
        try:
            return self.open()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()
