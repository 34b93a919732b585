"""`web_fetch`: read a web page as plain text, bounded in size and time and kept off private networks.

What the model gets is what it can use: the final URL, the page title and the readable text (HTML is turned
into text, plain text passes through), capped at `FetchLimits.max_chars` with a "[truncated]" mark. What the
model cannot do is make the bot read something large or slow without end (the body is streamed and cut at
`max_bytes`, the whole fetch including redirects has one deadline) or reach an internal address (see
`tools._url_guard`).

Redirects are followed here, not by httpx, so that every hop is checked; and each request connects to an
address that was checked (the URL carries the IP, the Host header and TLS server name carry the host name,
so certificates are still verified against the name). A DNS answer that changes between check and connect
therefore cannot send a request elsewhere. What remains:

- Proxies from the environment are ignored (`trust_env=False`): a proxy would resolve names itself and make
  the address check meaningless. A deployment that must use a proxy has to enforce the policy there.
- `Accept-Encoding: identity` is requested, and a hostile server may compress anyway: the body is read raw
  (`tools._body`) and gzip or deflate is decoded here, never more than the cap of output at a time, so a
  compression bomb costs no more than an honest page of that size. Other encodings (brotli, zstd, …) were not
  asked for and cannot be bounded as simply: they are refused. A declared charset that is not a text encoding
  (`base64`, `zlib`) or that cannot decode the page (UTF-16 without a byte order mark) is a tool error.
- NAT64 (64:ff9b::/96) addresses are refused as reserved, which also refuses public sites reached through
  a NAT64 gateway on an IPv6-only host.
"""

from __future__ import annotations

import asyncio
import codecs
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from langchain_core.tools import BaseTool, tool

from tools._body import read_body
from tools._html_text import html_to_text
from tools._url_guard import Resolver, Target, WebFetchError, parse_url, resolve_target, system_resolver

__all__ = ["DEFAULT_LIMITS", "FetchLimits", "WebFetchError", "fetch_readable", "make_web_fetch", "web_fetch"]

TRUNCATED_MARK = "[truncated]"


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """Bounds on one fetch. The defaults keep a page within a model's useful context and a tool's patience.

    Attributes:
        max_bytes: Body bytes kept before the download is cut (the rest is never downloaded), counted both as
            they arrive and once decoded (a compressed body cannot grow past it).
        max_chars: Characters of text returned to the model, the truncation mark included.
        timeout: Seconds for the whole fetch: resolution, every redirect hop and the body.
        max_redirects: Redirects followed before giving up.
    """

    max_bytes: int = 1024 * 1024
    max_chars: int = 8_000
    timeout: float = 10.0
    max_redirects: int = 5


DEFAULT_LIMITS = FetchLimits()

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_OTHER_TEXT_TYPES = frozenset({"application/json", "application/xml", "application/ld+json"})
_HEADERS = {
    "User-Agent": "livebot/0.1 (web_fetch tool)",
    "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.1",
    "Accept-Encoding": "identity",
}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


async def fetch_readable(
    url: str,
    *,
    allow_private: bool = False,
    limits: FetchLimits = DEFAULT_LIMITS,
    resolver: Resolver = system_resolver,
) -> str:
    """Fetch a URL and return its readable text for the model.

    Args:
        url: An absolute http(s) URL.
        allow_private: Permit loopback, private and other non-public addresses (intranet use, tests).
        limits: Size, time and redirect bounds.
        resolver: Host name resolution; tests inject one to exercise address pinning without DNS.

    Returns:
        "URL: <final url>", "Title: <title>" for HTML, a blank line and the text, at most `limits.max_chars`
        characters, ending in "[truncated]" when the page was cut.

    Raises:
        WebFetchError: Refused (scheme, address, content type, too many redirects) or failed (network
            error, HTTP error status, timeout), with a message meant for the model.
    """
    try:
        async with asyncio.timeout(limits.timeout):
            return await _fetch(parse_url(url), allow_private, limits, resolver)
    except TimeoutError:
        raise WebFetchError(f"timed out after {limits.timeout:g} s fetching {url}") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise WebFetchError(f"fetching {url} failed: {type(exc).__name__}: {exc}") from None


async def _fetch(url: httpx.URL, allow_private: bool, limits: FetchLimits, resolver: Resolver) -> str:
    async with httpx.AsyncClient(
        headers=_HEADERS, follow_redirects=False, trust_env=False, timeout=limits.timeout
    ) as client:
        for hop in range(limits.max_redirects + 1):
            try:
                target = await resolve_target(url, allow_private=allow_private, resolver=resolver)
            except WebFetchError as exc:
                if hop == 0:
                    raise
                raise WebFetchError(f"redirect to {url} refused: {exc}") from None
            async with _connect(client, target) as response:
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location:
                    url = _redirect_target(url, location)
                    continue
                return await _read(response, url, limits)
    raise WebFetchError(f"too many redirects (more than {limits.max_redirects})")


def _redirect_target(current: httpx.URL, location: str) -> httpx.URL:
    try:
        joined = current.join(location)
    except httpx.InvalidURL as exc:
        raise WebFetchError(f"invalid redirect location {location!r}: {exc}") from None
    try:
        return parse_url(str(joined))
    except WebFetchError as exc:
        raise WebFetchError(f"redirect to {location} refused: {exc}") from None


@asynccontextmanager
async def _connect(client: httpx.AsyncClient, target: Target) -> AsyncIterator[httpx.Response]:
    """Send the GET to the first checked address that accepts a connection, streaming the response."""
    last_error: httpx.TransportError | None = None
    for address in target.addresses:
        request = client.build_request(
            "GET",
            target.url.copy_with(host=address),
            headers={"Host": target.url.netloc.decode("ascii")},
            extensions={"sni_hostname": target.url.raw_host.decode("ascii")},
        )
        try:
            response = await client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            last_error = exc
            continue
        try:
            yield response
        finally:
            await response.aclose()
        return
    raise WebFetchError(f"could not connect to {target.url.host}: {last_error}")


async def _read(response: httpx.Response, url: httpx.URL, limits: FetchLimits) -> str:
    if not response.is_success:
        raise WebFetchError(f"HTTP {response.status_code} {response.reason_phrase} from {url}")
    mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
    is_html = mime in _HTML_TYPES
    if not (is_html or mime.startswith("text/") or mime in _OTHER_TEXT_TYPES):
        # Refused before the body is read: nothing to gain from downloading an image or a PDF.
        raise WebFetchError(
            f"refused content type {mime or '(none)'!r} from {url}: only HTML and plain text can be read"
        )
    body, cut = await read_body(response, limits.max_bytes)
    text = _decode(body, response.charset_encoding, sniff=is_html, final=not cut)
    header = f"URL: {url}"
    if is_html:
        title, text = await _extract(text, limits.max_chars)
        if title:
            header += f"\nTitle: {title}"
    return _cap(f"{header}\n\n{text or '(no readable text)'}", limits.max_chars, cut)


async def _extract(html: str, max_chars: int) -> tuple[str, str]:
    """`html_to_text` on a worker thread, so the agent's loop (every conversation's model stream) keeps running;
    a cancelled fetch (the tool's timeout, a /stop) ends the parsing too, at its next piece."""
    stop = threading.Event()
    try:
        return await asyncio.to_thread(html_to_text, html, max_chars=max_chars, stop=stop)
    finally:
        stop.set()


def _decode(body: bytes, declared: str | None, *, sniff: bool, final: bool) -> str:
    encoding = declared
    if encoding is None and sniff:
        match = _META_CHARSET.search(body[:2048])
        encoding = match.group(1).decode("ascii") if match else None
    try:
        codec = codecs.lookup(encoding or "utf-8")
    except LookupError:
        codec = codecs.lookup("utf-8")
    if not codec._is_text_encoding:  # "base64", "zlib_codec", "rot13": bytes-to-bytes codecs, not charsets
        raise WebFetchError(f"the page declares charset {encoding!r}, which is not a text encoding")
    decoder = codec.incrementaldecoder(errors="replace")
    try:
        # Not final when the body was cut: a character split by the cut is dropped, not shown as "\ufffd".
        return decoder.decode(body, final=final)
    except UnicodeError as exc:  # e.g. UTF-16 without a byte order mark
        raise WebFetchError(f"the page cannot be decoded as its declared charset {encoding!r}: {exc}") from None


def _cap(text: str, max_chars: int, cut: bool) -> str:
    if not cut and len(text) <= max_chars:
        return text
    mark = f"\n\n{TRUNCATED_MARK}"
    keep = text[: max(0, max_chars - len(mark))]
    if len(text) > len(keep):
        # End at a word boundary when one is close, so the model does not read half a word as a word.
        boundary = max(keep.rfind(" "), keep.rfind("\n"))
        if boundary > len(keep) * 0.9:
            keep = keep[:boundary]
    return keep.rstrip() + mark


def make_web_fetch(allow_private: bool = False, *, limits: FetchLimits = DEFAULT_LIMITS) -> BaseTool:
    """Build the `web_fetch` tool with its network policy fixed, so the model cannot change it.

    Args:
        allow_private: Let the tool reach loopback and private networks: only for a bot meant to read an
            intranet, and for tests.
        limits: Size, time and redirect bounds.
    """

    # The docstring below is the tool description the model reads, so it speaks to the model.
    async def web_fetch(url: str) -> str:
        """Fetch a web page or plain-text document and return its title and readable text.

        Long pages are cut and end with "[truncated]". Only http and https URLs on the public internet work;
        images, PDFs and other binary content are refused.

        Args:
            url: Absolute http or https URL, for example "https://example.com/article".
        """
        return await fetch_readable(url, allow_private=allow_private, limits=limits)

    return tool(web_fetch, parse_docstring=True)


web_fetch: BaseTool = make_web_fetch()
"""The tool with the safe default policy (public addresses only)."""
