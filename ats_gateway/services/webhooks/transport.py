"""One HTTP/1.1 connection to a checked webhook target, every exchange under a wall-clock
deadline (connect + TLS + send + the whole answer).

Why not urllib3 or requests: their read timeout bounds each ``recv``, not the exchange, so a
receiver that answers one byte every 2 s holds a worker thread for as long as it likes ([19]:
six such endpoints held every worker thread for minutes). Here the socket I/O is ours and the
HTTP/1.1 protocol is h11's (a maintained sans-I/O parser, the one under httpcore/httpx): before
each socket operation the timeout is set to what is left of the deadline, and CPython bounds a
whole ``sendall``, TLS handshake and TLS ``recv`` by the timeout given (a deadline, since 3.5),
so no pace of dripping can outlast it.

The answer is read to its end (up to :data:`MAX_ANSWER_BYTES`) before the connection is used
again; a connection whose answer was not read whole is closed, never reused. Reusing one
half-read made the next POST fail after the receiver had answered 200, and the event was sent
twice ([19]).

Errors::

    DeadlineExceeded   the deadline passed (connect, send or answer)
    SendFailed         refused, reset, closed early, TLS or protocol error (``str`` names it)
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from dataclasses import dataclass

import h11

from ats_gateway.services.webhooks.egress import Target

MAX_ANSWER_BYTES = 64 * 1024  # a receiver's body is not needed; read this much, then close
RECV_SIZE = 16 * 1024


class DeadlineExceeded(Exception):
    """The attempt's wall-clock deadline passed."""


class SendFailed(Exception):
    """The exchange failed before an answer (the message names the cause, never the URL).

    ``heard``: some bytes of an answer had arrived (the receiver got the request)."""

    def __init__(self, message: str, *, heard: bool = False) -> None:
        super().__init__(message)
        self.heard = heard


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names; the last value of a repeated header


def host_header(target: Target) -> str:
    """``Host``: the name, bracketed when it is an IPv6 literal (RFC 9110 7.2, RFC 3986 3.2.2),
    with the port unless it is the scheme's default."""
    host = f"[{target.host}]" if ":" in target.host else target.host
    default_port = 443 if target.scheme == "https" else 80
    return host if target.port == default_port else f"{host}:{target.port}"


class Connection:
    """A keep-alive connection pinned to ``target.address`` (TLS verifies ``target.host``)."""

    def __init__(self, target: Target, *, connect_timeout: float, ca_file: str = "") -> None:
        self.target = target
        self.connect_timeout = connect_timeout
        self.ca_file = ca_file  # PEM CAs instead of the system's (empty: the system's)
        self._sock: socket.socket | None = None
        self._h11: h11.Connection | None = None
        self._heard = False
        self.exchanges = 0  # on the current socket

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self._h11 = None
        self.exchanges = 0

    def post(self, headers: list[tuple[str, str]], body: bytes, deadline: float) -> Answer:
        """POST ``body`` to the target's path; ``deadline`` is a :func:`time.monotonic` value.

        A kept-alive connection the receiver closed meanwhile fails before any answer: the
        request is sent again once on a new connection (what browsers do), still within the
        same deadline."""
        reused = self._sock is not None
        try:
            return self._exchange(headers, body, deadline)
        except SendFailed as exc:
            if not reused or exc.heard:
                raise
            self.close()
            return self._exchange(headers, body, deadline)

    # ------------------------------------------------------------------ internals

    def _left(self, deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            self.close()
            raise DeadlineExceeded("the attempt's deadline passed")
        return left

    def _connect(self, deadline: float) -> None:
        # Each checked address in turn (a dual-stack receiver seen from a host without IPv6
        # answers on the second), all within the one deadline; never an unchecked address.
        failure: Exception | None = None
        for address in self.target.addresses:
            try:
                sock = socket.create_connection(
                    (address, self.target.port),
                    timeout=min(self.connect_timeout, self._left(deadline)),
                )
                break
            except OSError as exc:  # TimeoutError included
                failure = exc
        else:
            if isinstance(failure, TimeoutError):
                raise DeadlineExceeded("connect timed out") from None
            raise SendFailed(f"connect failed: {type(failure).__name__}") from None
        try:
            if self.target.scheme == "https":
                sock.settimeout(self._left(deadline))
                context = ssl.create_default_context(cafile=self.ca_file or None)
                sock = context.wrap_socket(sock, server_hostname=self.target.host)
        except TimeoutError:
            sock.close()
            raise DeadlineExceeded("TLS handshake timed out") from None
        except (OSError, ssl.SSLError) as exc:
            sock.close()
            raise SendFailed(f"TLS failed: {type(exc).__name__}") from None
        self._sock = sock
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=16 * 1024)
        self.exchanges = 0

    def _exchange(self, headers: list[tuple[str, str]], body: bytes, deadline: float) -> Answer:
        if self._sock is None:
            self._connect(deadline)
        sock, conn = self._sock, self._h11
        assert sock is not None and conn is not None
        self._heard = False
        request = h11.Request(
            method="POST",
            target=self.target.path,
            headers=[
                ("Host", host_header(self.target)),
                ("Content-Length", str(len(body))),
                *headers,
            ],
        )
        try:
            wire = (
                conn.send(request) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
            )
            sock.settimeout(self._left(deadline))
            sock.sendall(wire)
            answer = self._read_answer(sock, conn, deadline)
        except TimeoutError:
            self.close()
            raise DeadlineExceeded("the answer did not complete in time") from None
        except (OSError, h11.ProtocolError) as exc:
            self.close()
            raise SendFailed(f"send failed: {type(exc).__name__}", heard=self._heard) from None
        self.exchanges += 1
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:  # not read whole, or the receiver closes: never reuse it
            self.close()
        return answer

    def _read_answer(self, sock: socket.socket, conn: h11.Connection, deadline: float) -> Answer:
        response: h11.Response | None = None
        read = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                sock.settimeout(self._left(deadline))
                data = sock.recv(RECV_SIZE)
                self._heard = self._heard or bool(data)
                conn.receive_data(data)
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                read += len(event.data)
                if read > MAX_ANSWER_BYTES:
                    break  # the status is known; the connection is closed, not reused
            elif isinstance(event, h11.EndOfMessage):
                break
            elif event is h11.PAUSED:  # a protocol switch nobody asked for: never spin
                raise SendFailed("the receiver switched protocols", heard=True)
            elif isinstance(event, h11.ConnectionClosed):
                if response is None:
                    raise SendFailed("closed before answering", heard=self._heard)
                break
            # InformationalResponse (1xx): keep reading
        if response is None:  # pragma: no cover - h11 yields a Response before a body
            raise SendFailed("no answer")
        found = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in response.headers
        }
        return Answer(response.status_code, found)
