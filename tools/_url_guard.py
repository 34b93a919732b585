"""Which URLs `web_fetch` may connect to, and at which address (server-side request forgery protection).

A model can be talked into fetching anything a user (or a web page it read) names, and the bot usually runs
next to things that must not be reachable from the internet: the cloud metadata service at 169.254.169.254,
databases on loopback, admin panels on the private network. Every hop of a fetch therefore goes through
`resolve_target`: the scheme must be http(s), the host is resolved once (without blocking the event loop),
and *every* address it resolves to must be public. The caller then connects to one of exactly these
addresses, so a DNS answer that changes between the check and the connection (DNS rebinding) cannot
redirect the request.

Spellings of an address that look harmless are covered by resolving before checking: "2130706433",
"0x7f.1", "127.1" and "localhost" all come back from the resolver as 127.0.0.1. IPv6 addresses that embed an
IPv4 one (IPv4-mapped ::ffff:a.b.c.d, 6to4 2002::/16) are checked by the embedded address too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Returns the addresses (as text) a host name resolves to; injectable so tests need no DNS."""

MAX_ADDRESSES = 4
"""Addresses kept per host: enough to fall back from an unreachable IPv6 to IPv4, not a connection storm."""


class WebFetchError(ValueError):
    """A fetch was refused or failed; the message is short and written for the model to read.

    A `ValueError` like the other tools' input errors, so the agent layer can treat all tool failures alike.
    """


@dataclass(frozen=True, slots=True)
class Target:
    """A URL that passed the checks, with the addresses it may be fetched from (in resolver order)."""

    url: httpx.URL
    addresses: tuple[str, ...]


def is_forbidden_address(ip: IPAddress) -> bool:
    """Whether an address must not be fetched from: anything that is not plainly a public unicast address.

    `is_global` alone is not enough on Python 3.11: multicast counts as global, and IPv4-mapped IPv6
    addresses do not inherit the properties of the IPv4 address they carry.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            # A socket connects to the embedded address; judge that (Python versions disagree otherwise).
            return is_forbidden_address(ip.ipv4_mapped)
        if ip.sixtofour is not None and is_forbidden_address(ip.sixtofour):
            return True
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the system resolver in the loop's executor, as the connection itself would."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def parse_url(raw: str) -> httpx.URL:
    """Parse and check the parts of a URL that need no network: scheme, host, credentials.

    Raises:
        WebFetchError: The URL is malformed, not http(s), has no host or carries credentials.
    """
    try:
        url = httpx.URL(raw.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise WebFetchError(f"invalid URL {raw!r}: {exc}") from None
    if url.scheme not in ("http", "https"):
        raise WebFetchError(f"only http and https URLs can be fetched, not {url.scheme or 'no scheme'!r}")
    if not url.host:
        raise WebFetchError(f"URL has no host: {raw!r}")
    if url.userinfo:
        # They would be sent as Basic auth to whatever host the model chose.
        raise WebFetchError("URLs with credentials (user:password@) are not fetched")
    return url.copy_with(fragment=None)


async def resolve_target(url: httpx.URL, *, allow_private: bool, resolver: Resolver = system_resolver) -> Target:
    """Check one hop of a fetch and resolve the addresses it may connect to.

    Args:
        url: A URL from `parse_url` (the first hop, or a redirect target).
        allow_private: Skip the address policy (the addresses are still resolved and pinned); for a bot that
            is meant to read an intranet, and for tests against 127.0.0.1.
        resolver: Host name resolution; the system resolver unless a test injects one.

    Raises:
        WebFetchError: The host does not resolve, or any of its addresses is not public.
    """
    host = url.host
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = await resolver(url.raw_host.decode("ascii"), url.port or _default_port(url))
        except (OSError, UnicodeError) as exc:
            raise WebFetchError(f"could not resolve host {host!r}: {exc}") from None
        if not addresses:
            raise WebFetchError(f"could not resolve host {host!r}")
    if not allow_private:
        for address in addresses:
            if is_forbidden_address(ipaddress.ip_address(address)):
                raise WebFetchError(
                    f"refused to fetch {host!r}: it resolves to {address}, a private, loopback, link-local or "
                    "otherwise non-public address"
                )
    unique = tuple(dict.fromkeys(addresses))[:MAX_ADDRESSES]
    return Target(url=url, addresses=unique)


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80
