"""The capability registry: one profile per platform and chat kind, adjusted by settings but never unsafely."""

from __future__ import annotations

import pytest

from channels.capabilities import LiveMode, kinds, resolve


@pytest.mark.parametrize(
    ("platform", "kind", "mode", "limit", "interval"),
    [
        ("telegram", "private", LiveMode.DRAFT, 4096, 0.3),
        ("telegram", "group", LiveMode.EDIT, 4096, 3.1),
        ("telegram", "topic", LiveMode.EDIT, 4096, 3.1),
        ("slack", "thread", LiveMode.NATIVE, 12_000, 1.0),
        ("console", "terminal", LiveMode.EDIT, None, 0.05),
        ("console", "piped", LiveMode.OFF, None, 1.0),
    ],
)
def test_auto_profiles_match_the_design_table(platform, kind, mode, limit, interval) -> None:
    profile = resolve(platform, kind)
    assert (profile.mode, profile.max_chars, profile.update_interval) == (mode, limit, interval)


def test_a_mode_the_surface_lacks_falls_back() -> None:
    assert resolve("telegram", "group", mode=LiveMode.DRAFT).mode is LiveMode.EDIT
    assert resolve("telegram", "private", mode=LiveMode.NATIVE).mode is LiveMode.EDIT
    assert resolve("console", "piped", mode=LiveMode.EDIT).mode is LiveMode.OFF
    assert resolve("telegram", "private", mode=LiveMode.OFF).mode is LiveMode.OFF


def test_interval_setting_slows_down_but_never_below_the_platform_minimum() -> None:
    assert resolve("telegram", "group", interval=5).update_interval == 5
    assert resolve("telegram", "group", interval=0.1).update_interval == 3.1
    assert resolve("telegram", "private", interval=2).update_interval == 2  # drafts too


def test_every_profile_has_a_usable_mode() -> None:
    for platform, kind in kinds():
        profile = resolve(platform, kind)
        assert profile.supports(profile.mode)
        assert profile.key == f"{platform}.{kind}" or profile.key.startswith(platform)
