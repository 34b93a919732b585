"""Reading a response body within a byte cap that holds after decoding, for `web_fetch`.

httpx decodes a compressed body one network chunk at a time and hands over the whole output of each chunk: a
few kB of gzip or zstd can decode to a gigabyte before any cap sees it. So the body is read raw and decoded
here with zlib's `max_length`, which never produces more than is asked for; the cap counts the decoded bytes.
Only the encodings zlib bounds are accepted (the request asked for none at all); anything else is refused
before a byte of it is decoded.
"""

from __future__ import annotations

import zlib

import httpx

from tools._url_guard import WebFetchError

_IDENTITY = frozenset({"", "identity"})
_GZIP = frozenset({"gzip", "x-gzip"})
_DEFLATE = "deflate"


class _Inflater:
    """Bounded zlib decoding: gzip, or deflate with or without its zlib header (servers send both)."""

    def __init__(self, encoding: str) -> None:
        self._raw_fallback = encoding == _DEFLATE
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16 if encoding in _GZIP else zlib.MAX_WBITS)

    def decode(self, data: bytes, most: int) -> bytes:
        """Decode the next `data`, returning at most `most` (> 0) bytes: the caller stops when it gets that many."""
        try:
            out = self._zlib.decompress(data, most)
        except zlib.error as exc:
            if not self._raw_fallback:
                raise WebFetchError(f"the body is not valid compressed data: {exc}") from None
            self._raw_fallback = False  # a "deflate" body without the zlib header: raw deflate
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            return self.decode(data, most)
        self._raw_fallback = False
        return out


async def read_body(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    """Read at most `max_bytes` of the decoded body; the flag says whether there was more.

    Raises:
        WebFetchError: The body uses a content encoding other than gzip or deflate, or is not valid data in it.
    """
    encodings = [e.strip().lower() for e in response.headers.get("content-encoding", "").split(",")]
    encodings = [e for e in encodings if e not in _IDENTITY]
    if len(encodings) > 1 or (encodings and encodings[0] not in {*_GZIP, _DEFLATE}):
        raise WebFetchError(
            f"refused content encoding {', '.join(encodings)!r}: the server compressed a page that was asked for"
            " uncompressed, with an encoding that is not read (only gzip and deflate are)"
        )
    inflater = _Inflater(encodings[0]) if encodings else None
    body = bytearray()
    async for chunk in response.aiter_raw():
        room = max_bytes - len(body)
        data = inflater.decode(chunk, room + 1) if inflater else chunk  # one byte more tells there is more
        if len(data) > room:
            body += data[:room]
            return bytes(body), True
        body += data
    return bytes(body), False
