"""StreamingHandler: shows one reply on one surface while the model writes it.

The contract (docs/architecture.md, "The StreamingHandler contract") in brief: `emit` is O(1) and never blocks;
one flusher task makes at most one platform call per profile interval, only when the shown text would change,
always with the latest text; `take` finishes the current message before a tool runs; `stop` finishes the reply
and makes sure the whole text lands, as final message(s) where live updates could not show it.

Edit-failure rules in one sentence each:
- an intermediate update that fails is logged and skipped; the next one carries the latest text;
- the next update is scheduled only after the current one has finished;
- a 429 means no call from this reply before `retry_after`; a final delivery then waits and retries;
- "not modified" is success; a formatting error switches the rest of the reply to plain text; a deleted message
  is replaced by a new one; a refused draft or native stream falls back to edits, then to final-only;
- the final delivery is the one that must land: it retries network errors with backoff and, if the live message
  cannot be finished, sends the whole segment as a new message. What still fails is kept in `undelivered`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType

from bot.inflight import Screen
from channels.capabilities import LiveMode
from channels.clock import Clock, LoopClock
from channels.errors import (
    ChannelError,
    FormattingRejected,
    MessageGone,
    MessageTooLong,
    NotModified,
    PermanentError,
    RateLimited,
    StreamingRefused,
    TransientError,
)
from channels.splitting import split_to_fit
from channels.surface import ImageSurface, MessageRef, ReplySurface, capabilities, new_draft_id

log = logging.getLogger(__name__)

FINAL_BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
"""Waits between attempts of a final delivery that failed with a network or server error (~1 minute in all)."""
INTERMEDIATE_BACKOFF = 2.0
"""Extra wait after an intermediate update failed with a network or server error."""
PICTURE_ATTEMPTS = 4
"""Tries of one picture (a tool's chart) before the reply says it could not be sent."""
TYPING_REFRESH = 4.0
"""Platforms show "typing…" for about 5 s; refresh a little before it fades."""
_SPLIT_WINDOW = 4
"""A message never holds more than this many raw characters per unit of the limit (bounds the split search)."""


class StreamingHandler:
    """Streams one reply to one `ReplySurface`, following the surface's profile.

    Args:
        surface: Where the reply is shown; its `profile` decides the live mode, interval and length limit.
        clock: Injected in tests to control time; the event loop's clock otherwise.
        on_screen: Told what the reply shows after each platform call that changed it (the in-flight record,
            `bot.inflight`); it must be O(1) and do no I/O.

    Raises:
        CapabilityMismatch: The profile claims a capability the surface does not implement.
    """

    def __init__(
        self, surface: ReplySurface, *, clock: Clock | None = None, on_screen: Callable[[Screen], None] | None = None
    ) -> None:
        self._surface = surface
        self._on_screen = on_screen
        self._profile = surface.profile
        can = capabilities(surface)  # checked once, here: a mismatch never surfaces mid-reply
        self._drafts, self._streams, self._typist = can.draft, can.stream, can.typing
        self._status, self._tasks, self._images, self._rated = can.status, can.tasks, can.images, can.feedback
        self._clock = clock or LoopClock()
        self._mode = self._profile.mode
        self._limit = self._profile.max_chars
        self._interval = self._profile.update_interval
        self._queue: deque[str] = deque()  # emitted, not yet folded (deque: safe to append from any thread)
        self._text = ""  # the current segment (one platform message), folded
        self._shown = ""  # what the platform shows of the current segment
        self._ref: MessageRef | None = None
        self._draft_id = new_draft_id()
        self._held: list[str] = []  # finished segments not shown yet (final-only mode)
        self._plain = False
        self._next_at = 0.0
        self._wake = asyncio.Event()
        self._signalled = False  # a wake is on its way for the text queued; the flusher folds it all at once
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self._flusher: asyncio.Task[None] | None = None
        self._typing: asyncio.Task[None] | None = None
        self._status_on = False
        self._drafting = False  # the flusher is in a draft call (which the final message would replace at once)
        self._stopped = False
        self.first_visible: float | None = None
        """When (the clock's time) the first text of the reply was on screen; None until then (for the metrics)."""
        self.undelivered: list[str] = []
        """Text that could not be delivered even by the final rules (for an outbox to retry later)."""
        self.feedback = False
        """Ask for the user's rating on the answer's last message, where the surface has feedback buttons (set for
        answers; help texts and refusals are not rated)."""
        self.patience = float("inf")
        """Longest a final delivery waits in all (retry_after, backoff); past it the text goes to `undelivered`,
        for an outbox to deliver later, and the conversation moves on."""

    @property
    def clock(self) -> Clock:
        """The clock the reply is timed by (`first_visible` is in its time)."""
        return self._clock

    @property
    def mode(self) -> LiveMode:
        """The live mode in force; it only ever falls back (native/draft -> edit -> off) during a reply."""
        return self._mode

    async def start(self) -> None:
        """Start the flusher (and "typing…", where the surface has it). Call before the first `emit`."""
        if self._loop is not None:
            raise RuntimeError("StreamingHandler.start() called twice")
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._flusher = asyncio.create_task(self._flush_loop(), name=f"flusher:{self._profile.key}")
        self._set_waiting(True)

    def emit(self, token: str) -> None:
        """Append model text. O(1), no I/O, callable from any thread."""
        if self._stopped or self._loop is None:
            raise RuntimeError("emit() outside start()..stop()")
        if not token:
            return
        self._queue.append(token)
        if self._signalled:  # the flusher has been told and folds this token in with the others
            return
        self._signalled = True
        if threading.get_ident() == self._thread:
            self._wake.set()
        else:  # one wake of the chat loop per update, not one per token (a hundred answers make thousands a second)
            self._loop.call_soon_threadsafe(self._wake.set)

    async def take(self) -> str:
        """Finish the current message before a tool runs; the next text opens a new message.

        Returns:
            The text of this message that is not on screen: "" once it was delivered; in final-only mode the
            segment, which is kept and delivered by `stop`.
        """
        async with self._lock:
            if self._mode is LiveMode.OFF:
                text = self._fold().strip()
                if text:
                    self._held.append(text)
                self._new_segment()
                return text
            return await self._finish_segment()

    async def tool_started(self, name: str, call_id: str = "") -> None:
        """Tell the user a tool is running: a task or a status line where the surface has one, and "typing…"."""
        self._set_waiting(True)
        if self._mode is LiveMode.OFF:
            return
        if self._tasks is not None:
            await self._quietly(self._tasks.task(call_id, f"Using {name}", "in_progress"))
        elif self._status is not None:
            self._status_on = True
            await self._quietly(self._status.status(f"Using {name}…"))

    async def tool_finished(self, name: str, call_id: str = "", *, ok: bool = True) -> None:
        """Mark a tool's task done (surfaces with tasks); a status line simply waits for the next text."""
        if self._tasks is not None and self._mode is not LiveMode.OFF:
            state = "complete" if ok else "error"
            await self._quietly(self._tasks.task(call_id, f"Using {name}", state))

    async def picture(self, data: bytes, caption: str) -> None:
        """Show a picture (a tool's chart) after the text so far; the text after it opens a new message.

        Called between `take()` and the next text, so the picture lands between the text before the tool and the
        answer after it; in final-only mode the text held so far is delivered first, to keep that order. A
        surface without `images_out`, a picture over the platform's limit, or one the platform will not take gets
        a short note in the text instead. Like a final message it waits out a 429 (within `patience`).
        """
        limit, images = self._profile.max_image_bytes, self._images
        if images is None or (limit is not None and len(data) > limit):
            self.emit(f"\n\n_🖼 {caption}: a picture was made, but this chat cannot show it._\n\n")
            return
        async with self._lock:
            if self._mode is LiveMode.OFF and self._held:
                self._text = "\n\n".join(self._held)
                self._held = []
            await self._finish_segment()
            if not await self._send_picture(images, data, caption):
                self.emit(f"\n\n_🖼 {caption}: the picture could not be sent._\n\n")

    async def _send_picture(self, images: ImageSurface, data: bytes, caption: str) -> bool:
        """One picture; a 429 or a network error is tried again (`PICTURE_ATTEMPTS` in all, within `patience`)."""
        waited = 0.0
        for attempt in range(PICTURE_ATTEMPTS):
            try:
                await images.image(data, caption=caption)
                return True
            except RateLimited as exc:
                pause = exc.retry_after
            except TransientError as exc:
                pause = FINAL_BACKOFF[attempt]
                log.info("%s: picture attempt %d failed: %s", self._profile.key, attempt + 1, exc)
            except ChannelError as exc:
                log.warning("%s: picture refused: %s", self._profile.key, exc)
                return False
            if attempt + 1 == PICTURE_ATTEMPTS or waited + pause > self.patience:
                break
            waited += pause
            await self._clock.sleep(pause)
        log.warning("%s: picture not sent after %d attempts", self._profile.key, attempt + 1)
        return False

    async def stop(self) -> bool:
        """Finish the reply. Idempotent.

        Returns:
            True when the whole text is on screen; False when some of it is in `undelivered`.
        """
        if self._stopped:
            return not self.undelivered
        if self._drafting:
            # A draft still on its way (under load: waiting for budget) would be replaced by the final message
            # at once; dropping it lets the final take its place, so the answer costs one call, not two.
            await self._end_flusher()
        async with self._lock:
            self._stopped = True
            await self._end_flusher()
            self._set_waiting(False)
            if self._mode is LiveMode.OFF:
                self._held.append(self._fold().strip())
                self._text = "\n\n".join(part for part in self._held if part)
                self._held = []
            await self._finish_segment(last=self.feedback)
            await self._clear_status()
            await self._quietly(self._surface.close())
        return not self.undelivered

    async def abandon(self, *, tidy: bool = False) -> None:
        """Stop writing the reply: another replica finishes it (`bot.conversations`, replica mode).

        Args:
            tidy: False when this replica lost the conversation's lease (another may be writing already): no
                platform call at all. True when it hands the reply over as it shuts down (it still holds the
                conversation): the surface is closed too, within `patience`, which takes away what only this reply
                showed beside its text (a Telegram group's status message while a tool runs, Slack's status line
                and open streams), so the reply that goes on elsewhere starts clean; the text stays as shown.
        """
        async with self._lock:
            self._stopped = True
            await self._end_flusher()
            self._set_waiting(False)
            if not tidy:
                return
            try:
                async with asyncio.timeout(None if self.patience == float("inf") else self.patience):
                    await self._quietly(self._surface.close())
            except TimeoutError:
                log.info("%s: the surface was not closed within %g s", self._profile.key, self.patience)

    async def __aenter__(self) -> StreamingHandler:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- the flusher -------------------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while asyncio.current_task() is self._flusher:  # see `_end_flusher`
            await self._wake.wait()
            self._wake.clear()
            delay = self._next_at - self._clock.now()
            if delay > 0:
                await self._clock.sleep(delay)
            async with self._lock:
                self._signalled = False  # before the fold: a token queued after it signals again
                await self._update()

    async def _update(self) -> None:
        """One intermediate update with the latest text, if it would change what is shown."""
        if self._mode is LiveMode.OFF:
            return
        await self._overflow()
        view = self._fold().rstrip()
        if not view or view == self._shown:
            return
        try:
            shown = await self._deliver(view, final=False)
        except MessageTooLong:
            self._shrink_limit(view)
            shown = False
        if not shown:
            self._wake.set()  # try again after the wait that _deliver set, with whatever is latest then

    async def _overflow(self) -> None:
        """Finish full messages while the current segment is over the limit; the rest stays current."""
        while True:
            text = self._fold()
            head, tail = self._cut(text)
            if not tail:
                return
            await self._finish_segment(head)
            self._text = tail

    # -- segments ----------------------------------------------------------------------------------------

    def _fold(self) -> str:
        """The current segment's text, with everything emitted so far folded in (leading blanks dropped)."""
        if self._queue:
            pieces = [self._text]
            while self._queue:
                pieces.append(self._queue.popleft())
            self._text = "".join(pieces)
            if not self._shown:
                self._text = self._text.lstrip()
        return self._text

    def _cut(self, text: str) -> tuple[str, str]:
        """(text, "") when `text` fits one message, else the message that fits and the rest."""
        limit = self._limit
        if limit is None or (len(text) <= limit * _SPLIT_WINDOW and self._surface.measure(text) <= limit):
            return text, ""
        surface = self._surface
        return split_to_fit(text, surface.measure, limit, window=limit * _SPLIT_WINDOW, ceiling=surface.ceiling)

    def _new_segment(self) -> None:
        self._text = ""
        self._shown = ""
        self._ref = None
        self._draft_id = new_draft_id()

    async def _finish_segment(self, text: str | None = None, *, last: bool = False) -> str:
        """Deliver the current segment (or `text`, a head cut from it) as final message(s); open a new segment.

        Args:
            text: A head cut from the segment, instead of the whole segment.
            last: This is the answer's last segment: its last message asks for feedback.

        Returns:
            What could not be delivered ("" normally); it is also recorded in `undelivered`.
        """
        text = self._fold() if text is None else text
        missed: list[str] = []
        while text.strip():
            head, tail = self._cut(text)
            view = head.rstrip()
            if last and not tail.strip() and self._rated is not None:
                self._rated.ask_feedback()
            try:
                if not await self._deliver_final(view):
                    missed.append(view)
                    self.undelivered.append(view)
            except MessageTooLong:
                self._shrink_limit(view)
                continue  # cut the same text again, shorter
            self._new_segment()
            text = tail.lstrip()
        self._new_segment()
        return "\n\n".join(missed)

    async def _deliver_final(self, view: str) -> bool:
        """Make `view` the final text of the current segment, falling back to a new message if need be."""
        if self._mode is LiveMode.EDIT and view == self._shown and not self._profile.buttons:
            return True  # (with buttons the final edit still goes: it takes the Stop button away)
        await self._clear_status()
        if await self._deliver(view, final=True):
            return True
        if self._ref is None:
            return False  # the failed call was already a send of the whole segment: it would fail the same way
        log.warning("%s: finishing the live message failed; sending the segment anew", self._profile.key)
        self._mode, self._ref, self._shown = LiveMode.OFF, None, ""
        return await self._deliver(view, final=True)

    def _shrink_limit(self, view: str) -> None:
        """The platform counted `view` as too long: cut 10% shorter than it from now on in this reply."""
        measured = self._surface.measure(view)
        self._limit = max(1, int(min(self._limit or measured, measured) * 0.9))
        log.warning("%s: platform said message too long; limit now %d", self._profile.key, self._limit)

    # -- platform calls ----------------------------------------------------------------------------------

    async def _deliver(self, view: str, *, final: bool) -> bool:
        """Show `view` as the current segment, applying the error rules. Returns whether it is on screen.

        Raises:
            MessageTooLong: The caller must cut the text shorter.
        """
        failures = 0
        waited = 0.0
        while True:
            try:
                await self._apply(view, final=final)
            except NotModified:
                pass
            except FormattingRejected:
                if self._plain:
                    return self._give_up(view, final, "formatting rejected even as plain text")
                log.info("%s: formatting rejected; sending plain text", self._profile.key)
                self._plain = True
                continue
            except MessageGone:
                if self._ref is None:
                    return self._give_up(view, final, "message gone before it was sent")
                log.info("%s: message gone; continuing in a new one", self._profile.key)
                self._ref, self._shown = None, ""
                continue
            except StreamingRefused:
                if self._mode is LiveMode.OFF:
                    return self._give_up(view, final, "surface refused a plain message")
                self._mode = self._profile.fallback(self._mode)
                self._interval = self._profile.interval
                log.info("%s: live mode refused; falling back to %s", self._profile.key, self._mode)
                if self._mode is LiveMode.OFF and not final:
                    return False
                continue
            except RateLimited as exc:
                self._next_at = max(self._next_at, self._clock.now() + exc.retry_after)
                if not final:
                    return False
                wait = self._next_at - self._clock.now()
                if waited + wait > self.patience:
                    return self._give_up(view, final, f"retry_after {exc.retry_after:g} s is past our patience")
                waited += wait
                await self._clock.sleep(wait)
                continue
            except MessageTooLong:
                raise
            except PermanentError as exc:
                self._next_at = self._clock.now() + self._interval + INTERMEDIATE_BACKOFF  # no instant retry loop
                return self._give_up(view, final, str(exc))
            except ChannelError as exc:
                failures += 1
                if not final:
                    self._next_at = self._clock.now() + self._interval + INTERMEDIATE_BACKOFF
                    log.info("%s: update skipped: %s", self._profile.key, exc)
                    return False
                if failures > len(FINAL_BACKOFF) or waited + FINAL_BACKOFF[failures - 1] > self.patience:
                    return self._give_up(view, final, str(exc))
                waited += FINAL_BACKOFF[failures - 1]
                await self._clock.sleep(FINAL_BACKOFF[failures - 1])
                continue
            self._shown = view
            now = self._clock.now()
            if self.first_visible is None:
                self.first_visible = now
            self._next_at = max(self._next_at, now + self._interval)
            self._set_waiting(False)
            if self._on_screen is not None:
                self._on_screen(self._screen(view, final))
            return True

    def _screen(self, view: str, final: bool) -> Screen:
        """What the user sees after `view` went out: a message (or draft) being written, or none open."""
        if final or self._mode is LiveMode.OFF:
            return Screen(self._mode.value)
        buttons = self._mode is LiveMode.EDIT and self._profile.buttons
        return Screen(self._mode.value, self._ref, view, buttons)

    def _give_up(self, view: str, final: bool, why: str) -> bool:
        log.warning("%s: %s update failed: %s", self._profile.key, "final" if final else "intermediate", why)
        return False

    async def _apply(self, view: str, *, final: bool) -> None:
        """One platform call that makes `view` the segment's text, in the mode in force."""
        surface, plain = self._surface, self._plain
        if not final:
            await self._clear_status()
        match self._mode:
            case LiveMode.EDIT:
                if self._ref is None:
                    self._ref = await surface.send(view, final=final, plain=plain)
                else:
                    await surface.edit(self._ref, view, final=final, plain=plain)
            case LiveMode.DRAFT:
                if final:  # a draft is never the last thing a user sees
                    self._ref = await surface.send(view, final=True, plain=plain)
                else:
                    assert self._drafts is not None  # resolve() picks only a mode the profile has
                    self._drafting = True
                    try:
                        await self._drafts.draft(self._draft_id, view, plain=plain)
                    finally:
                        self._drafting = False
            case LiveMode.NATIVE:
                streams = self._streams
                assert streams is not None  # resolve() picks only a mode the profile has
                delta = view[len(self._shown) :]  # the segment only grows, so what is shown is a prefix
                if self._ref is None:
                    if final:
                        self._ref = await surface.send(view, final=True, plain=plain)
                    else:
                        self._ref = await streams.stream_start(view)
                elif final:
                    await streams.stream_stop(self._ref, delta)
                else:
                    await streams.stream_append(self._ref, delta)
            case LiveMode.OFF:
                if final:
                    self._ref = await surface.send(view, final=True, plain=plain)

    # -- waiting feedback --------------------------------------------------------------------------------

    def _set_waiting(self, waiting: bool) -> None:
        """Keep "typing…" up while the user has nothing new to read (before the first text, during tools)."""
        if self._typist is None:
            return
        if waiting and self._typing is None and not self._stopped:
            self._typing = asyncio.create_task(self._typing_loop(), name=f"typing:{self._profile.key}")
        elif not waiting and self._typing is not None:
            self._typing.cancel()
            self._typing = None

    async def _typing_loop(self) -> None:
        assert self._typist is not None
        while asyncio.current_task() is self._typing:  # a cancellation lost on the way ends it too (`_end_flusher`)
            await self._quietly(self._typist.typing())
            await self._clock.sleep(TYPING_REFRESH)

    async def _clear_status(self) -> None:
        if self._status_on and self._status is not None:
            self._status_on = False
            await self._quietly(self._status.status(None))

    async def _quietly(self, call: Awaitable[None]) -> None:
        """Run a cosmetic call (typing, status) whose failure must not disturb the reply."""
        try:
            await call
        except ChannelError as exc:
            log.debug("%s: cosmetic call failed: %s", self._profile.key, exc)

    async def _end_flusher(self) -> None:
        """Cancel the flusher and wait until it has ended.

        The flusher also ends at the top of its loop once it is no longer `_flusher`, because a cancellation can
        be lost on its way: Python 3.11's `asyncio.wait_for` returns the awaited result instead of raising when
        the cancellation comes as that result does (fixed in 3.12), and redis-py sends every command through it
        (replica mode: each platform call takes and gives back its place in the shared rate budgets). A flusher
        that lost its cancellation in a draft's call went back to waiting for text, and `stop` waited for it for
        ever: the final message never went out and the conversation stayed held (issue 16, the burst test).
        """
        task, self._flusher = self._flusher, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
