"""What each platform and chat kind can do while an answer streams, as data.

The StreamingHandler reads a `Profile` and never tests a platform's name: adding a platform or a chat kind is a
new row in `_PROFILES`, not a new code path. STREAM_MODE and STREAM_EDIT_INTERVAL adjust a row at start-up
through `resolve`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class LiveMode(StrEnum):
    """How an answer is shown while it is written, best first."""

    NATIVE = "native"
    """The platform's own streaming message (Slack chat.startStream / appendStream / stopStream)."""
    DRAFT = "draft"
    """Ephemeral previews (Telegram sendMessageDraft), then one real message per segment."""
    EDIT = "edit"
    """Send a message, then edit it as the text grows."""
    OFF = "off"
    """Nothing until the answer is complete, then final message(s): the path for surfaces that cannot edit."""


@dataclass(frozen=True, slots=True)
class Profile:
    """Capabilities and limits of one platform and chat kind.

    Attributes:
        key: "platform.kind", for logs.
        edit: Messages can be edited after they are sent.
        draft: Ephemeral draft previews are available.
        native_stream: The platform has its own streaming message.
        typing: A "typing…" indicator can be shown while waiting.
        status: A short status line ("Using calculator…") can be shown while a tool runs.
        tasks: Tool calls can be shown as tasks with a state (Slack task_update chunks); preferred over `status`.
        buttons: Messages can carry buttons (a Stop button while streaming).
        images_out: Pictures (a chart) can be sent into the conversation (`ImageSurface.image`); without it the
            reply says in words that a picture was made.
        max_image_bytes: Largest picture the platform takes; a larger one gets the note instead. None: no limit.
        feedback: The last message of an answer can carry the platform's feedback buttons (Slack's 👍 / 👎).
        approvals: A person can be asked to approve a tool call (Approve / Deny buttons, or the console's y/n);
            without it a call that needs approval is denied, and the model is told why.
        max_chars: Longest message, as the surface's `measure` counts it; None for no limit.
        interval: Least seconds between two updates of the same reply in edit or native mode.
        draft_interval: Least seconds between two draft previews.
        auto_mode: The mode STREAM_MODE=auto picks.
        mode: The mode in force after settings were applied (see `resolve`).
    """

    key: str
    edit: bool
    draft: bool = False
    native_stream: bool = False
    typing: bool = False
    status: bool = False
    tasks: bool = False
    buttons: bool = False
    images_out: bool = False
    max_image_bytes: int | None = None
    feedback: bool = False
    approvals: bool = False
    max_chars: int | None = None
    interval: float = 1.0
    draft_interval: float = 0.3
    auto_mode: LiveMode = LiveMode.EDIT
    mode: LiveMode = LiveMode.EDIT

    def supports(self, mode: LiveMode) -> bool:
        """Whether this surface can stream in `mode` at all."""
        return {
            LiveMode.NATIVE: self.native_stream,
            LiveMode.DRAFT: self.draft,
            LiveMode.EDIT: self.edit,
            LiveMode.OFF: True,
        }[mode]

    def fallback(self, mode: LiveMode) -> LiveMode:
        """The mode to use when `mode` is refused: edits where possible, else final-only."""
        return LiveMode.EDIT if mode in (LiveMode.NATIVE, LiveMode.DRAFT) and self.edit else LiveMode.OFF

    @property
    def update_interval(self) -> float:
        """Least seconds between intermediate updates in the mode in force."""
        return self.draft_interval if self.mode is LiveMode.DRAFT else self.interval


_TELEGRAM_PHOTO_LIMIT = 10 * 1024 * 1024  # sendPhoto takes photos up to 10 MB
_SLACK_FILE_LIMIT = 1024 * 1024 * 1024  # files.getUploadURLExternal takes files up to 1 GB

_TELEGRAM_GROUP = Profile(
    key="telegram.group",
    edit=True,
    typing=True,
    status=True,
    buttons=True,
    images_out=True,
    max_image_bytes=_TELEGRAM_PHOTO_LIMIT,
    approvals=True,
    max_chars=4096,
    interval=3.1,  # 20 messages per minute per group
)

_PROFILES: dict[tuple[str, str], Profile] = {
    ("telegram", "private"): Profile(
        key="telegram.private",
        edit=True,
        draft=True,
        typing=True,
        status=True,
        buttons=True,
        images_out=True,
        max_image_bytes=_TELEGRAM_PHOTO_LIMIT,
        approvals=True,
        max_chars=4096,
        interval=1.1,  # about one message per second per chat
        draft_interval=0.3,
        auto_mode=LiveMode.DRAFT,
    ),
    ("telegram", "group"): _TELEGRAM_GROUP,
    ("telegram", "supergroup"): replace(_TELEGRAM_GROUP, key="telegram.supergroup"),
    ("telegram", "topic"): replace(_TELEGRAM_GROUP, key="telegram.topic"),
    ("slack", "thread"): Profile(
        key="slack.thread",
        edit=True,
        native_stream=True,
        typing=True,
        status=True,
        tasks=True,
        buttons=True,
        images_out=True,
        max_image_bytes=_SLACK_FILE_LIMIT,
        feedback=True,
        approvals=True,
        max_chars=12_000,
        interval=1.0,
        auto_mode=LiveMode.NATIVE,
    ),
    # The console saves a picture as a file and prints where; it asks for an approval with a y/n question.
    ("console", "terminal"): Profile(
        key="console.terminal", edit=True, status=True, images_out=True, approvals=True, interval=0.05
    ),
    ("console", "piped"): Profile(
        key="console.piped", edit=False, images_out=True, approvals=True, auto_mode=LiveMode.OFF
    ),
}


def resolve(platform: str, kind: str, *, mode: LiveMode | None = None, interval: float | None = None) -> Profile:
    """The profile for one reply, with the settings applied.

    Args:
        platform: "telegram", "slack" or "console".
        kind: The chat kind within the platform (see `_PROFILES`).
        mode: STREAM_MODE; None means auto. A mode the surface cannot do falls back (native/draft -> edit -> off),
            so a setting can never make a surface attempt what it lacks.
        interval: STREAM_EDIT_INTERVAL. It can slow updates down but never below the platform's own minimum,
            so no setting gets the bot rate-limited.

    Raises:
        KeyError: For an unknown platform or kind (a programming error in a channel).
    """
    base = _PROFILES[(platform, kind)]
    wanted = base.auto_mode if mode is None else mode
    while not base.supports(wanted):
        wanted = base.fallback(wanted)
    if interval is None:
        return replace(base, mode=wanted)
    return replace(
        base,
        mode=wanted,
        interval=max(base.interval, interval),
        draft_interval=max(base.draft_interval, interval),
    )


def kinds() -> list[tuple[str, str]]:
    """Every (platform, kind) the registry knows, for documentation and tests."""
    return list(_PROFILES)
