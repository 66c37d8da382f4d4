"""Where a webhook may be sent: the URL rules at registration and the address check at send.

Server-side request forgery is the risk of letting API keys name URLs the gateway then calls:
a key could point its endpoint at the cloud metadata service or at Redis on the private
network. So, in production:

* only ``https`` URLs are accepted;
* the URL is printable ASCII (percent-encoded path, punycode host), so nothing in it can break
  the request line or the ``Host`` header;
* every address the host name resolves to must be a global (public) unicast address
  (:func:`address_allowed`): :attr:`ipaddress.IPv4Address.is_global`, and not multicast, not
  IPv6 site-local, and for the IPv6 forms that carry an IPv4 address (IPv4-mapped and SIIT,
  IPv4-compatible, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo) the embedded IPv4 must
  pass the same rule, because ``is_global`` alone calls ``[64:ff9b::a9fe:a9fe]`` (the metadata
  service through a NAT64 gateway) and ``[2002:7f00:1::]`` global. The local-use NAT64 prefix
  ``64:ff9b:1::/48`` (RFC 8215) is refused whole: its IPv4 position depends on a local prefix
  length. This is checked at registration *and* at each send, and the request goes to the
  address that was checked (the connection is pinned to it; the TLS certificate is still
  verified against the host name), so DNS rebinding between check and connect cannot reach a
  private address;
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
    others: tuple[str, ...] = ()  # the host's other checked addresses, tried in order after it

    @property
    def addresses(self) -> tuple[str, ...]:
        return (self.address, *self.others)


def _local_allowed(env: str) -> bool:
    return env in ("dev", "test")


NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: IPv4 in the last 32 bits
NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # RFC 4291 2.5.5.1 (deprecated)
SIIT = ipaddress.ip_network("::ffff:0:0:0/96")  # RFC 2765 IPv4-translated


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address an IPv6 address carries by a standard translation or tunnel."""
    found: list[ipaddress.IPv4Address] = []
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip in SIIT or ip in NAT64_WELL_KNOWN or (ip in IPV4_COMPATIBLE and int(ip) > 1):
        found.append(low32)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found


def address_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A public unicast address that embeds no non-public IPv4 address (see the module)."""
    if not ip.is_global or ip.is_multicast:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local or ip in NAT64_LOCAL_USE:
            return False
        return all(address_allowed(v4) for v4 in embedded_ipv4(ip))
    return True


def check_url(url: str, env: str) -> tuple[str, str, int, str]:
    """Static checks of a webhook URL; returns (scheme, host, port, path+query)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise RefusedURL(
            "invalid_url", f"Must be an absolute URL of at most {MAX_URL_LENGTH} chars."
        )
    if not url.isascii() or not url.isprintable() or " " in url:
        # A lone surrogate could not even be stored (500 before: [21]); a raw space or
        # control character would break the request line.
        raise RefusedURL(
            "invalid_url",
            "Must be printable ASCII: percent-encode other characters, punycode host names.",
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
        if address_allowed(ip):
            continue
        if _local_allowed(env) and ip.is_loopback and host in LOOPBACK_HOSTS:
            continue
        # Every address must pass: a host resolving to one public and one private address
        # would otherwise reach the private one on some connects.
        raise RefusedURL(
            "private_address",
            f"The host {host!r} resolves to a private, loopback, multicast or reserved "
            "address (or a public form of one).",
        )
    unique = list(dict.fromkeys(addresses))
    return Target(scheme, host, port, unique[0], path, tuple(unique[1:]))
