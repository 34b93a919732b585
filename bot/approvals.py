"""Tool calls waiting for a person's approval, kept durably so that the buttons still work after a restart.

When a run pauses before a gated tool (agent/approval.py), the runtime records an `Approval` here and the surface
shows the calls with Approve / Deny buttons (the console asks y/n). The run itself is in the agent's checkpoint;
this store keeps what the bot needs to go on: where the request is (the target's address and the message), who
asked (only they, or a chat admin, decide: `ChannelBot.may_act`, the same rule as for Stop), and the deadline.

The rules users see (README, "Approvals"):
- A press decides once: the request's message then says what was decided and by whom, without buttons, and the
  run goes on in a new message (approved: the tool runs; denied: the model is told the user declined).
- No decision within APPROVAL_TIMEOUT: denied. The deadline is a wall-clock time on disk, so a request whose
  deadline passed while the bot was down is denied at the next start.
- A new message in the conversation while a request waits denies it ("you wrote something else instead"): the
  model answers without the tool first, then the new message is answered. The conversation is never stuck.
- /stop (and /reset) while a request waits cancels it: the request says so and the model is not called; the
  call is answered as cancelled when the conversation goes on.

The store is the one truth about which approvals wait, in one process as with replicas (`get`, `waiting_in`,
`due` read it; nothing is kept in memory), so a press, a new message, /stop, /reset or the timeout acts the same
whichever replica it lands on, also after the replica that asked died. A decision is made in two steps:
- claimed, at once, by whoever decides (`bot.conversations.Conversations.decide`: in memory with one process, by
  a Redis key set with NX with replicas, in the same Lua script that queues the decision at the head of the
  conversation's queue), so a press is answered truthfully at once and a second one hears "no longer waiting";
- written here (`record`) when its turn runs, before the run goes on. Only the first decision written counts
  (`record` returns None to any later one), so an approval is never resumed twice, whatever the claims did.
Every process looks for approvals past their deadline every EXPIRE_EVERY seconds (`watch`); the claim lets one of
them decide each.

Approvals live in the bot's state store (`bot.store`: SQLite in BOT_DATA_DIR, or Postgres with DATABASE_URL), in the
table `livebot_approvals`. Those an earlier version kept in `BOT_DATA_DIR/approvals.sqlite` are imported at the
first start (`bot.store.import_file`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import unicodedata
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agent.approval import DENIED
from bot.store import STORE_ERRORS, Schema, Store, import_file

log = logging.getLogger(__name__)

LEGACY_FILE = "approvals.sqlite"
SCHEMA = Schema(
    "approvals",
    [
        "CREATE TABLE livebot_approvals (id TEXT PRIMARY KEY, channel TEXT NOT NULL, conversation TEXT NOT NULL,"
        " asker TEXT NOT NULL, text TEXT NOT NULL, deadline DOUBLE PRECISION NOT NULL, address TEXT NOT NULL,"
        " message TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, decided TEXT, note TEXT)",
        "CREATE INDEX livebot_approvals_waiting ON livebot_approvals (channel) WHERE decided IS NULL",
    ],
)
_COLUMNS = "id, channel, conversation, asker, text, deadline, address, message, created"
_WAITING = "id, conversation, asker, text, deadline, address, message"
"""The columns an `Approval` is made of (`Approvals._approval`)."""
EXPIRE_EVERY = 2.0
"""Seconds between two looks for approvals past their deadline (the deadline is minutes away: a look costs one
indexed query)."""
MAX_VALUE_CHARS = 300
"""Characters of one argument value shown in a request; the model's text may be long, and it is hostile."""
MAX_ARGS_CHARS = 1500
"""Characters of one call's arguments shown in a request."""


@dataclass(frozen=True, slots=True)
class Approval:
    """One request waiting for a decision.

    Attributes:
        id: A random token: the buttons carry it (`channels.inbound.approval_data`).
        channel: The platform ("telegram", "slack", "console"): each bot reads its own.
        conversation: The conversation (the agent's thread) whose run waits.
        asker: Who asked for the run: they may decide (or a chat admin).
        text: The request as shown (the calls), kept to settle the message after a restart.
        deadline: Wall-clock time (`time.time()`) after which it is denied.
        address: The target's address (`Target.address()`), to reach the chat after a restart; None on the console.
        message: The request's message as the surface returned it (JSON-able); None until it is shown.
    """

    id: str
    channel: str
    conversation: str
    asker: str
    text: str
    deadline: float
    address: dict[str, Any] | None = None
    message: Any = None


@dataclass(frozen=True, slots=True)
class Decision:
    """What becomes of an approval.

    Attributes:
        approve: Run the calls (True), or answer them as declined.
        note: The line under the request once decided ("✅ Approved by Alice").
        reason: Why the calls were not run, for the model.
        resume: Go on with the run now; False cancels (/stop, /reset): the model is not called.
    """

    approve: bool
    note: str
    reason: str = DENIED
    resume: bool = True


@dataclass(frozen=True, slots=True)
class Ruling:
    """A decision on its way to the run it goes on with: queued as a turn of the approval's conversation (in Redis
    with replicas, so it carries only data), and written (`Approvals.record`) when that turn runs.

    Attributes:
        approval: The approval's id.
        decision: What becomes of it.
        pressed: The message whose button was pressed: the request, also when the bot went down before it recorded
            where the request is (None for a decision that was no press).
    """

    approval: str
    decision: Decision
    pressed: Any = None

    def encode(self) -> dict[str, Any]:
        decision = self.decision
        return {"id": self.approval, "approve": decision.approve, "note": decision.note,
                "reason": decision.reason, "resume": decision.resume, "pressed": self.pressed}  # fmt: skip

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> Ruling:
        decision = Decision(bool(data["approve"]), str(data["note"]), str(data["reason"]), bool(data["resume"]))
        return cls(str(data["id"]), decision, data.get("pressed"))


def approved(by: str) -> Decision:
    """A press of Approve by `by` (a display name: shown as plain words)."""
    return Decision(True, f"✅ Approved by {_name(by)}.")


def denied(by: str) -> Decision:
    """A press of Deny by `by`."""
    return Decision(False, f"❌ Denied by {_name(by)}.", reason=f"{DENIED} (they pressed Deny)")


def _name(name: str) -> str:
    """A user's display name as plain words in Markdown: people choose their names, so no markup gets through."""
    return "".join(char if char.isalnum() or char in " .-'" else "_" for char in name).strip()[:64] or "someone"


def expired(timeout: float) -> Decision:
    wait = f"{timeout / 60:g} minutes" if timeout >= 60 else f"{timeout:g} s"
    return Decision(False, f"⌛ No answer within {wait}: denied.", reason=f"no one approved it within {wait}")


SUPERSEDED = Decision(
    False, "❌ Denied: a new message came instead.", reason=f"{DENIED}: they wrote a new message instead"
)
CANCELLED = Decision(False, "⏹ Cancelled.", resume=False)
CANNOT_ASK = "this chat cannot show the approval buttons, so no one could approve it"


def describe_calls(calls: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """The request's text in Markdown: each call's tool and its arguments as JSON in a code block.

    The arguments are the model's text, so they are treated as hostile: each value is cut at MAX_VALUE_CHARS and
    each call at MAX_ARGS_CHARS, and backticks, control, format (bidi) and separator characters are shown as JSON
    escapes, so nothing can close the code block, reorder the text or fake lines.
    """
    lines = ["🔐 **Approval needed** before I use a tool:" if len(calls) == 1 else "🔐 **Approval needed** for:"]
    for label, args in calls:
        shown = json.dumps({key: _cut(value) for key, value in args.items()}, ensure_ascii=False, indent=1)
        shown = "".join(_visible(char) for char in shown)
        if len(shown) > MAX_ARGS_CHARS:
            shown = shown[: MAX_ARGS_CHARS - 1] + "…"
        name = "".join(char if char.isalnum() or char in " :_-." else "_" for char in label)[:100]
        lines.append(f"**{name}**\n```json\n{shown}\n```")
    return "\n\n".join(lines)


def _cut(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_VALUE_CHARS else value[: MAX_VALUE_CHARS - 1] + "…"
    if isinstance(value, Mapping):
        return {str(key)[:MAX_VALUE_CHARS]: _cut(item) for key, item in list(value.items())[:50]}
    if isinstance(value, list):
        return [_cut(item) for item in value[:50]]
    return value


def _visible(char: str) -> str:
    if char == "`" or (char not in "\n" and unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co")):
        return f"\\u{ord(char):04x}"
    return char


class Approvals:
    """The approvals of one channel, in the store. Open with `open_approvals`.

    Args:
        store: The bot's state store, its `approvals` schema set up.
        channel: The platform name whose approvals these are.
        timeout: APPROVAL_TIMEOUT, seconds.
        clock: Wall-clock time (tests may pass their own).
    """

    def __init__(self, store: Store, channel: str, timeout: float, *, clock: Callable[[], float] = time.time) -> None:
        self.timeout = timeout
        self._store = store
        self._channel = channel
        self._clock = clock

    async def get(self, approval_id: str) -> Approval | None:
        """The waiting approval `approval_id`, or None (decided, or never this bot's).

        Raises:
            STORE_ERRORS: The store is away (as for every read here).
        """
        found = await self._waiting("id = ?", (approval_id,))
        return found[0] if found else None

    async def waiting_in(self, conversation: str) -> Approval | None:
        """The approval waiting in `conversation`, if any (a conversation has one at most: its run is paused; were
        there more, the latest is the one its run waits for)."""
        found = await self._waiting("conversation = ?", (conversation,))
        return max(found, key=lambda approval: approval.deadline, default=None)

    async def due(self) -> list[Approval]:
        """The approvals whose deadline passed (also while the bot was down, or on a replica that died)."""
        return await self._waiting("deadline <= ?", (self._clock(),))

    async def _waiting(self, where: str, params: tuple[Any, ...]) -> list[Approval]:
        async with self._store.transaction() as tx:
            rows = await tx.fetchall(
                f"SELECT {_WAITING} FROM livebot_approvals WHERE channel = ? AND decided IS NULL AND {where}",
                (self._channel, *params),
            )
        return [self._approval(row) for row in rows]

    def _approval(self, row: Sequence[Any]) -> Approval:
        return Approval(row[0], self._channel, row[1], row[2], row[3], row[4], json.loads(row[5]), json.loads(row[6]))

    async def open(self, conversation: str, asker: str, text: str, address: dict[str, Any] | None) -> Approval:
        """Record a new request; it waits until decided, or until APPROVAL_TIMEOUT from now."""
        approval = Approval(
            secrets.token_urlsafe(12), self._channel, conversation, asker, text, self._clock() + self.timeout, address
        )
        async with self._store.transaction() as tx:
            await tx.execute(
                f"INSERT INTO livebot_approvals ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, 'null', ?)",
                (approval.id, self._channel, conversation, asker, text, approval.deadline, json.dumps(address),
                 self._clock()),
            )  # fmt: skip
        return approval

    async def shown(self, approval: Approval, message: Any) -> Approval:
        """Record where the request is shown (its message), so whoever decides it settles that message."""
        async with self._store.transaction() as tx:
            await tx.execute(
                "UPDATE livebot_approvals SET message = ? WHERE id = ?", (json.dumps(message), approval.id)
            )
        return replace(approval, message=message)

    async def record(self, ruling: Ruling) -> Approval | None:
        """Write the decision, before the run goes on (so it is never resumed twice, a restart included); returns
        the approval as recorded (with the message it is shown in), or None when a decision was written already
        (here, or by another replica): that one counts, this one is dropped."""
        decision = ruling.decision
        outcome = "approved" if decision.approve else ("denied" if decision.resume else "cancelled")
        async with self._store.transaction() as tx:
            rows = await tx.fetchall(
                "UPDATE livebot_approvals SET decided = ?, note = ? WHERE id = ? AND channel = ? AND decided IS NULL"
                f" RETURNING {_WAITING}",
                (outcome, decision.note, ruling.approval, self._channel),
            )
        if not rows:
            log.info("approval %s was decided first by another decision", ruling.approval)
            return None
        approval = self._approval(rows[0])
        if approval.message is None and ruling.pressed is not None:
            approval = replace(approval, message=ruling.pressed)
        return approval

    async def watch(self, expire: Callable[[Approval], Awaitable[object]]) -> None:
        """Every EXPIRE_EVERY seconds, until cancelled, hand each approval past its deadline to `expire`, which
        decides it (its claim makes one decision of any number of looks, here and on other replicas). A store
        that is away is looked at again at the next period."""
        task = asyncio.current_task()
        while True:
            try:
                due = await self.due()
            except STORE_ERRORS as exc:
                log.warning("%s: cannot look for approvals past their deadline (%s)", self._channel, exc)
                due = []
            for approval in due:
                try:
                    await expire(approval)
                except Exception:  # one that cannot be decided does not hold up the others
                    log.exception("%s: approval %s past its deadline not decided", approval.conversation, approval.id)
            if task is not None and task.cancelling():  # a cancellation lost on its way (see `_running` in
                return  # bot.conversations: Python 3.11's wait_for, which redis-py uses) still ends it
            await asyncio.sleep(EXPIRE_EVERY)


async def open_approvals(store: Store, data_dir: Path, channel: str, timeout: float) -> Approvals:
    """`channel`'s approvals in `store` (the table set up, those an earlier version kept in
    `data_dir / "approvals.sqlite"` imported)."""
    await store.migrate(SCHEMA)
    await import_file(  # the ids are random tokens: an import repeated after a crash skips what it has
        store,
        data_dir / LEGACY_FILE,
        f"SELECT {_COLUMNS} FROM approvals WHERE decided IS NULL",
        f"INSERT INTO livebot_approvals ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
    )
    return Approvals(store, channel, timeout)
