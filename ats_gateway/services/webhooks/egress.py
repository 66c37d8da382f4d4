"""Where a webhook may be sent: the URL rules at registration and the address check at send.

Server-side request forgery is the risk of letting API keys name URLs the gateway then calls:
a key could point its endpoint at the cloud metadata service or at Redis on the private
network. So, in production:

* only ``https`` URLs are accepted;
* every address the host name resolves to must be a global (public) address
  (:attr:`ipaddress.IPv4Address.is_global`), checked at registration *and* at each send, and
  the request goes to the address that was checked (the connection is pinned to it; the TLS
  certificate is still verified against the host name), so DNS rebinding between check and
  connect cannot reach a private address;
* redirects are never followed (the sender treats 3xx as a failure).

In ``dev`` and ``test`` the same rules apply, except that ``http://127.0.0.1`` (and
``localhost``, ``[::1]``) are allowed, for local receivers.

Errors::

    RefusedURL      ``code`` (invalid_url | scheme_not_allowed | private_address |
                    unresolvable) and a message naming what is wrong
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
MAX_URL_LENGTH = 2048


class RefusedURL(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Target:
    """A checked destination: connect to ``address``, speak to ``host``."""

    scheme: str
    host: str
    port: int
    address: str
    path: str  # path + query, as sent in the request line


def _local_allowed(env: str) -> bool:
    return env in ("dev", "test")


def check_url(url: str, env: str) -> tuple[str, str, int, str]:
    """Static checks of a webhook URL; returns (scheme, host, port, path+query)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise RefusedURL(
            "invalid_url", f"Must be an absolute URL of at most {MAX_URL_LENGTH} chars."
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise RefusedURL("invalid_url", "Not a valid URL.") from None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise RefusedURL("invalid_url", "Must be an absolute http(s) URL.")
    if parts.username or parts.password:
        raise RefusedURL("invalid_url", "Credentials in the URL are not allowed.")
    if parts.fragment:
        raise RefusedURL("invalid_url", "A fragment is not allowed.")
    if parts.scheme == "http" and not (_local_allowed(env) and host in LOOPBACK_HOSTS):
        raise RefusedURL(
            "scheme_not_allowed",
            "Must use https (http is allowed only for 127.0.0.1 outside production).",
        )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path


def resolve(url: str, env: str) -> Target:
    """Check ``url`` and resolve it to one allowed address (raises :class:`RefusedURL`)."""
    scheme, host, port, path = check_url(url, env)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise RefusedURL("unresolvable", f"The host {host!r} does not resolve.") from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise RefusedURL("unresolvable", f"The host {host!r} does not resolve.")
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if ip.is_global:
            continue
        if _local_allowed(env) and ip.is_loopback and host in LOOPBACK_HOSTS:
            continue
        # Every address must pass: a host resolving to one public and one private address
        # would otherwise reach the private one on some connects.
        raise RefusedURL(
            "private_address",
            f"The host {host!r} resolves to a private, loopback or reserved address.",
        )
    return Target(scheme, host, port, addresses[0], path)
