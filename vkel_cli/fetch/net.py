"""The connection layer under vkel_cli.fetch.http: which addresses the tool may reach on its own, and a
total deadline per request.

Address policy. URLs that vkel chooses by itself (a record's `image` URL, a retrieved candidate,
every redirect hop) may not reach loopback, private, link-local, multicast, unspecified or reserved
addresses, IPv4 or IPv6 (IPv4-mapped, NAT64 and 6to4 forms are judged by the IPv4 address inside),
unless the user opts in (`--allow-private-urls`, `VKEL_ALLOW_PRIVATE_URLS=1`). The check runs in
the connection itself: the host is resolved once, each address is checked, and the socket connects
to a checked address, while Host and TLS SNI keep the name. So DNS cannot answer one address to the
check and another to the connect (rebinding). Endpoints the user configures (an LLM server, the
search API) are not guarded: a local vLLM server is normal.

Deadline. requests' timeout bounds each socket operation, so a server that trickles a byte a second
never trips it. Each request here runs under a Deadline: a watchdog thread shuts the request's
sockets down when it expires, which ends any blocked connect, TLS handshake or read at once.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import os
import socket
import threading
import time

ALLOW_ENV = "VKEL_ALLOW_PRIVATE_URLS"
_allow_private = False

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def allow_private_urls(flag: bool = True) -> None:
    """Let URLs vkel picks by itself reach private/loopback/link-local addresses (the CLI flag)."""
    global _allow_private
    _allow_private = bool(flag)


def private_allowed() -> bool:
    return _allow_private or os.environ.get(ALLOW_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def blocked_reason(address: str) -> str | None:
    """Why `address` (an IP literal) may not be reached by a URL vkel chose; None when it is public."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or (ip.sixtofour if ip.sixtofour else None)
        if inner is None and ip in _NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            reason = blocked_reason(str(inner))
            return f"{reason} (inside {ip})" if reason else None
    for kind, flag in (("loopback", ip.is_loopback), ("unspecified", ip.is_unspecified),
                       ("link-local", ip.is_link_local), ("multicast", ip.is_multicast),
                       ("reserved", ip.is_reserved), ("private", ip.is_private)):
        if flag:
            return kind
    if not ip.is_global:  # shared address space (100.64/10), benchmarking, documentation ranges...
        return "not globally routable"
    return None


class AddressRefused(OSError):
    """A URL vkel chose resolved only to addresses the policy refuses."""


class DeadlineExceeded(OSError):
    """The total time allowed for one request ran out."""


# -- deadlines -------------------------------------------------------------------------------------
class Deadline:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._conns: list = []
        self._socks: list = []
        self._done = False
        self._lock = threading.Lock()
        _watchdog().add(self)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def attach(self, conn=None, sock=None) -> None:
        """Shut down `conn`'s socket, and `sock`, if the deadline passes while they are in use. Both are
        kept: a connection drops its socket reference when the server says it will close (the response
        still reads from it), and a TLS connection swaps its plain socket for a wrapped one."""
        with self._lock:
            for item, kept in ((conn, self._conns), (sock, self._socks)):
                if item is not None and not any(item is k for k in kept):
                    kept.append(item)
            expired = self.expired
        if expired:
            _shut(conn, sock)

    def fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            conns, socks = list(self._conns), list(self._socks)
        for conn in conns:
            _shut(conn)
        for sock in socks:
            _shut(None, sock)

    def close(self) -> None:
        with self._lock:
            self._done = True
            self._conns.clear()
            self._socks.clear()


def _shut(conn=None, sock=None) -> None:
    for target in (getattr(conn, "sock", None), sock):
        if target is None:
            continue
        try:  # socket.socket's own shutdown, not SSLSocket's (which tears TLS state down under a reader)
            socket.socket.shutdown(target, socket.SHUT_RDWR)
        except OSError:  # already closed, or a plain socket since wrapped for TLS
            pass


class _Watchdog:
    def __init__(self):
        self._heap: list = []
        self._count = itertools.count()
        self._cond = threading.Condition()
        threading.Thread(target=self._run, name="vkel-deadlines", daemon=True).start()

    def add(self, deadline: Deadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline.at, next(self._count), deadline))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                _, _, deadline = heapq.heappop(self._heap)
            deadline.fire()


_dog: _Watchdog | None = None
_dog_pid = -1
_dog_lock = threading.Lock()


def _watchdog() -> _Watchdog:
    global _dog, _dog_pid
    with _dog_lock:
        if _dog is None or _dog_pid != os.getpid():  # a forked child has no watchdog thread: start one
            _dog, _dog_pid = _Watchdog(), os.getpid()
        return _dog


# -- what the current request runs under (requests gives the connection no way to be told) --------
_context = threading.local()


class Scope:
    """`with Scope(deadline, guarded):` around one request attempt in this thread."""

    def __init__(self, deadline: Deadline, guarded: bool):
        self.deadline, self.guarded = deadline, guarded
        self.refused: list[str] = []

    def __enter__(self):
        self._outer = getattr(_context, "scope", None)
        _context.scope = self
        return self

    def __exit__(self, *exc):
        _context.scope = self._outer
        self.deadline.close()


def current() -> Scope | None:
    return getattr(_context, "scope", None)


# -- connections -------------------------------------------------------------------------------------
def _connect(conn) -> socket.socket:
    """Resolve conn's host once, skip refused addresses, connect to the first checked one."""
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    scope = current()
    guard = scope is not None and scope.guarded and not private_allowed()
    timeout = conn.timeout if isinstance(conn.timeout, (int, float)) else None
    if scope is not None:
        left = scope.deadline.remaining()
        timeout = left if timeout is None else min(timeout, left)
    try:
        infos = socket.getaddrinfo(conn._dns_host, conn.port, 0, socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise NameResolutionError(conn.host, conn, err) from err
    last: OSError | None = None
    refused = []
    for family, kind, proto, _, address in infos:
        reason = blocked_reason(address[0]) if guard else None
        if reason:
            refused.append(f"{address[0]} is {reason}")
            continue
        sock = socket.socket(family, kind, proto)
        try:
            for option in conn.socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(timeout)
            if conn.source_address:
                sock.bind(conn.source_address)
            if scope is not None:
                scope.deadline.attach(sock=sock)
            sock.connect(address)
            return sock
        except OSError as err:
            sock.close()
            last = err
    if refused and last is None:
        message = (f"{conn.host} resolves to {'; '.join(refused)}: refused for a URL vkel fetches on its own "
                   "(use --allow-private-urls or VKEL_ALLOW_PRIVATE_URLS=1 to allow it)")
        if scope is not None:
            scope.refused.append(message)
        raise AddressRefused(message)
    if isinstance(last, TimeoutError):
        raise ConnectTimeoutError(conn, f"Connection to {conn.host} timed out") from last
    raise NewConnectionError(conn, f"Failed to establish a new connection: {last}") from last


class _Policed:
    """Mixin for urllib3 connections: connect through _connect; attach to the request's deadline;
    re-check the peer of a reused connection."""

    def _new_conn(self):
        return _connect(self)

    def connect(self):
        scope = current()
        if scope is not None:
            scope.deadline.attach(self)
        super().connect()
        if scope is not None:
            scope.deadline.attach(sock=self.sock)  # the TLS-wrapped socket, when it is one

    def request(self, *args, **kwargs):
        scope = current()
        if scope is not None:
            scope.deadline.attach(self, self.sock)
            if self.sock is not None and scope.guarded and not private_allowed():
                try:
                    peer = self.sock.getpeername()[0]
                except OSError:
                    peer = None
                reason = peer and blocked_reason(peer)
                if reason:
                    message = f"{self.host} is connected to {peer}, which is {reason}: refused"
                    scope.refused.append(message)
                    raise AddressRefused(message)
        return super().request(*args, **kwargs)


def adapter():
    """A requests HTTPAdapter whose connections follow the policy and the deadline."""
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Connection(_Policed, HTTPConnection):
        pass

    class SecureConnection(_Policed, HTTPSConnection):
        pass

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class SecurePool(HTTPSConnectionPool):
        ConnectionCls = SecureConnection

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": SecurePool}

    return Adapter()
