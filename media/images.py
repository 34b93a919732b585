"""Images for a model request: decoded safely, turned upright, at most 2048 px on the longest side, re-encoded.

Re-encoding is the point, not a side effect: a model server gets a plain JPEG (a PNG where the image has
transparency or was a PNG, so screenshots keep their text sharp) whatever the user sent, without EXIF metadata
(location!) and at a size vision models read at full detail anyway. Pillow's decompression-bomb guard stays on, and
the pixel count is checked from the header before anything is decoded, so a tiny file that claims to be a
100,000 × 100,000 image costs nothing. CPU-bound: call from a worker thread (Pillow releases the GIL while it
decodes and resizes).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

from media.errors import Unreadable

MAX_SIDE = 2048
"""Longest side sent to the model, in pixels."""
MAX_PIXELS = 40_000_000
"""Largest image decoded at all (width × height); a 40-megapixel photo is about the largest a phone takes."""
JPEG_QUALITY = 85
BAD_IMAGE = "I could not open {name}: it is not an image I can read, or the file is damaged."
TOO_MANY_PIXELS = "I could not open {name}: the image is too large (over {limit} megapixels)."


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """An image ready for a model request.

    Attributes:
        data: The re-encoded image.
        mime: "image/jpeg" or "image/png".
        width: Width as sent (after the downscale).
        height: Height as sent.
        original: (width, height) as the user sent it, upright.
    """

    data: bytes
    mime: str
    width: int
    height: int
    original: tuple[int, int]

    @property
    def suffix(self) -> str:
        """The file name suffix for `mime`."""
        return ".png" if self.mime == "image/png" else ".jpg"


def prepare_image(data: bytes, name: str = "the image") -> PreparedImage:
    """Decode, orient, downscale and re-encode one image.

    Args:
        data: The file as the user sent it.
        name: How the image is called in an error message.

    Raises:
        Unreadable: Not an image, corrupt, truncated, or too many pixels (the message names `name`).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # a bomb is an error here, not a warning
        try:
            image: Image.Image = Image.open(io.BytesIO(data))
            lossless = image.format == "PNG"  # screenshots: JPEG would blur their text
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise Unreadable(TOO_MANY_PIXELS.format(name=name, limit=MAX_PIXELS // 1_000_000))
            image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced scale straight away
            image = ImageOps.exif_transpose(image)
            original = _upright_size(width, height, image)
            image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
            return _encode(image, original, lossless=lossless)
        except Unreadable:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # Pillow's own check, at open
            raise Unreadable(TOO_MANY_PIXELS.format(name=name, limit=MAX_PIXELS // 1_000_000)) from None
        except Exception:  # Pillow raises OSError, ValueError, SyntaxError, struct.error, ... for bad input
            raise Unreadable(BAD_IMAGE.format(name=name)) from None


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the header alone (no decoding), or None when it is not an image Pillow knows."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return None


def _upright_size(width: int, height: int, image: Image.Image) -> tuple[int, int]:
    """The original size as the user sees it: swapped when EXIF turned the image a quarter."""
    turned = (image.width > image.height) != (width > height) and image.width != image.height
    return (height, width) if turned else (width, height)


def _encode(image: Image.Image, original: tuple[int, int], *, lossless: bool) -> PreparedImage:
    out = io.BytesIO()
    if lossless or image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image.convert("RGBA").save(out, format="PNG", optimize=True)
        mime = "image/png"
    else:
        image.convert("RGB").save(out, format="JPEG", quality=JPEG_QUALITY)
        mime = "image/jpeg"
    return PreparedImage(out.getvalue(), mime, image.width, image.height, original)
