"""Images are made fit for a model: upright, at most 2048 px, re-encoded; bad ones are refused by name."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from media.errors import Unreadable
from media.images import MAX_SIDE, prepare_image
from tests.media.samples import jpeg, png


def test_a_large_photo_is_downscaled_to_2048_on_its_longest_side() -> None:
    prepared = prepare_image(jpeg(4000, 3000))
    assert (prepared.width, prepared.height) == (MAX_SIDE, 1536)
    assert prepared.original == (4000, 3000)
    assert prepared.mime == "image/jpeg"
    with Image.open(io.BytesIO(prepared.data)) as decoded:
        assert decoded.size == (MAX_SIDE, 1536)


def test_exif_orientation_is_applied_and_dropped() -> None:
    prepared = prepare_image(jpeg(1280, 960, orientation=6))  # a phone held upright: shown turned a quarter
    assert (prepared.width, prepared.height) == (960, 1280)
    assert prepared.original == (960, 1280)
    with Image.open(io.BytesIO(prepared.data)) as decoded:
        assert decoded.getexif().get(0x0112) is None  # nothing left to turn it again (nor a location to leak)


def test_a_small_photo_keeps_its_size_and_transparency_stays_png() -> None:
    assert prepare_image(jpeg(640, 480)).original == (640, 480)
    prepared = prepare_image(png(64, 48, alpha=True))
    assert (prepared.mime, prepared.width, prepared.height) == ("image/png", 64, 48)


@pytest.mark.parametrize("data", [b"", b"not an image at all", jpeg(300, 200)[:200]])
def test_corrupt_or_truncated_images_are_refused_by_name(data: bytes) -> None:
    with pytest.raises(Unreadable, match=r"holiday\.jpg"):
        prepare_image(data, "holiday.jpg")


def test_a_decompression_bomb_is_refused_before_it_is_decoded() -> None:
    # A PNG that declares 30,000 × 30,000 pixels is only a few kilobytes; decoding it would take gigabytes.
    image = Image.new("1", (30_000, 30_000))
    out = io.BytesIO()
    image.save(out, format="PNG")
    assert len(out.getvalue()) < 1_000_000
    with pytest.raises(Unreadable, match="too large"):
        prepare_image(out.getvalue(), "bomb.png")


def test_an_image_over_the_pixel_limit_is_refused_from_its_header() -> None:
    image = Image.new("1", (10_000, 6_000))  # 60 megapixels: under Pillow's own guard, over ours
    out = io.BytesIO()
    image.save(out, format="PNG")
    with pytest.raises(Unreadable, match="over 40 megapixels"):
        prepare_image(out.getvalue(), "huge.png")
