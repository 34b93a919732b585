"""Replica mode: each conversation's queue in Redis, and the lease that lets one replica at a time answer it.

A message that lands on any replica is appended to its conversation's list (`enqueue`), in the order the
platform sent it (two replicas that take in two messages of one conversation at once insert them by `sent`). The
replica that holds the conversation's lease drains the list one turn at a time (`bot.conversations` decides what a
turn is, as with one process); when the list is empty it lets the lease go. Enqueueing and letting go are each
one Lua script (atomic in Redis), so a message appended while the holder lets go is never stranded: either the
holder sees it before it lets go, or the sender sees no holder and takes the lease itself.

The lease is a key holding `<replica>|<token>`, with an expiry, where the token comes from one counter (`INCR`):
every taking gets a larger one, and each script that changes the queue or the lease first checks the caller's
value (the fencing check), so a replica whose lease expired cannot pop another holder's messages or let its lease
go. One heartbeat per replica renews all the leases it holds (`renew`, every third of `LEASE_TTL`) and reports
the ones it lost; the caller stops those replies at once, and stops all of them when renewals fail for two thirds
of the TTL (its lease may have expired): a replica that lost a lease stops writing to the platform.

Every held (or orphaned) conversation is also in a sorted set, scored by when its lease expires (Redis's clock);
a message queued where nobody holds the conversation counts as leased for one TTL (its sender takes the lease at
once, unless it dies first), and a conversation handed over at shutdown (what waits in it, a reply left
unfinished there) is due at once (score 0).
A replica that dies stops renewing, so its conversations' scores fall behind; every replica looks for such
conversations every `SWEEP_EVERY` seconds (`expired`) and takes them over: that is how the queued messages of a
dead replica, and the replies it was writing, are finished by another.

A decision on an approval (`decide`) is queued at the head of its conversation's list, so it goes on with the
paused run before the messages that wait, and in the same script it is claimed: a key per approval set with NX,
so of any number of decisions (presses on several replicas, a new message, the timeout) one is queued and the
others hear that it is taken. In Redis the decision outlives the replica that claimed it: the holder, or whoever
takes the conversation over, runs it. As entries may come before the ones the holder peeked (a decision, or a
message sent earlier), it takes what it peeked only while the head is still the entry it peeked first (`pop`),
else it looks again, so what goes first is answered first.

Stop requests travel by pub/sub: each replica listens on a channel of its own; a Stop press that lands elsewhere
is published to the channel of the replica that holds the conversation (`holder`). Who asked for the running reply
(the authority to stop it) is kept beside the lease (`running`).

Why these primitives: a list per conversation keeps the platform's order and is popped only by the holder; Lua
makes each check-and-change atomic without WATCH loops; a counter gives fencing tokens; a sorted set finds expired
leases without scanning keys; pub/sub is fire-and-forget, which suits a Stop (a lost one is pressed again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from channels.inbound import Attachment, FileKind, Incoming

log = logging.getLogger(__name__)

LEASE_TTL = 6.0
"""Seconds a conversation's lease lasts without renewal: how long a dead replica's conversations wait."""
SWEEP_EVERY = 1.0
"""Seconds between two looks for conversations whose holder stopped renewing."""
CLAIM_TTL = 3600.0
"""Seconds an approval's claim (`decide`) lasts: far longer than its decision waits at the head of the queue before
it is written to the store, which then says it is decided; a claim whose decision was lost with Redis (or dropped
by a Stop) frees the approval again after it, for the timeout to decide."""

_QUEUED = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 'held' end
local now = redis.call('TIME')
local added = redis.call('ZADD', KEYS[3], 'NX', now[1] * 1000 + math.floor(now[2] / 1000) + tonumber(ARGV[4]), ARGV[3])
if added == 1 then return 'free' end
return 'orphaned'
"""
"""What an entry just queued finds: its conversation held, free, or orphaned (the end of `_ENQUEUE` and `_DECIDE`)."""
_ENQUEUE = (
    """
local length = redis.call('LLEN', KEYS[1])
if length >= tonumber(ARGV[2]) then return 'full' end
local sent, before = tonumber(ARGV[5]), nil
for i = length - 1, 0, -1 do  -- past the entries the platform sent later (usually none: one look at the tail)
  local queued = redis.call('LINDEX', KEYS[1], i)
  if tonumber(cjson.decode(queued)['s'] or 0) <= sent then break end
  before = queued
end
if before then redis.call('LINSERT', KEYS[1], 'BEFORE', before, ARGV[1]) else redis.call('RPUSH', KEYS[1], ARGV[1]) end
"""
    + _QUEUED
)
_DECIDE = (
    """
if not redis.call('SET', KEYS[4], '1', 'NX', 'PX', ARGV[2]) then return 'taken' end
redis.call('LPUSH', KEYS[1], ARGV[1])
"""
    + _QUEUED
)
_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[3])
local value = ARGV[1] .. '|' .. token
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
local now = redis.call('TIME')
redis.call('ZADD', KEYS[2], now[1] * 1000 + math.floor(now[2] / 1000) + tonumber(ARGV[2]), ARGV[3])
return value
"""
_POP = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
if #ARGV == 1 then redis.call('DEL', KEYS[1]) return 1 end
local head = redis.call('LINDEX', KEYS[1], 0)
if not head or cjson.decode(head)['i'] ~= ARGV[2] then return 0 end
local taken = {}
for i = 2, #ARGV do taken[ARGV[i]] = true end
for _, queued in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if taken[cjson.decode(queued)['i']] then redis.call('LREM', KEYS[1], 1, queued) end
end
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
if ARGV[3] == '0' and redis.call('LLEN', KEYS[1]) > 0 then return 0 end
redis.call('DEL', KEYS[2], KEYS[4])
if ARGV[3] == '2' or redis.call('LLEN', KEYS[1]) > 0 then
  redis.call('ZADD', KEYS[3], 0, ARGV[2])
else
  redis.call('ZREM', KEYS[3], ARGV[2])
end
return 1
"""
_RENEW = """
local now = redis.call('TIME')
local expires = now[1] * 1000 + math.floor(now[2] / 1000) + tonumber(ARGV[1])
local lost = {}
for i = 2, #ARGV, 2 do
  local lease = KEYS[i]
  if redis.call('GET', lease) == ARGV[i] then
    redis.call('PEXPIRE', lease, ARGV[1])
    redis.call('PEXPIRE', KEYS[i + 1], ARGV[1])
    redis.call('ZADD', KEYS[1], expires, ARGV[i + 1])
  else
    table.insert(lost, ARGV[i + 1])
  end
end
return lost
"""
_MAY_RUN = """
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms - 60000)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], ms, ARGV[2])
redis.call('PEXPIRE', KEYS[1], 60000)
return 1
"""
_EXPIRED = """
local now = redis.call('TIME')
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now[1] * 1000 + math.floor(now[2] / 1000), 'LIMIT', 0, ARGV[1])
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """One queued message as the replicas share it: what `Incoming` holds, and where its reply goes."""

    conversation: str
    text: str
    user_id: str
    user_name: str | None
    address: dict[str, Any] | None
    id: str = ""
    """Unique per entry: the replica that queued it answers its own message from memory."""
    files: tuple[dict[str, Any], ...] = ()
    """The message's files (`Attachment` without its download, which the holder makes from `source`)."""
    sent: float = 0.0
    """The message's place in its conversation's order on the platform (`Incoming.sent`): the queue keeps it (a
    decision's 0 keeps it before every message)."""
    decided: dict[str, Any] | None = None
    """Not a message: a decision on an approval (`bot.approvals.Ruling`, encoded), whose run goes on."""

    @classmethod
    def of(cls, incoming: Incoming, address: dict[str, Any] | None, id: str = "") -> Entry:
        """The entry of a message whose reply goes to `address`: its files without their downloads (those the
        platform keeps, `Attachment.source`; another replica downloads them again)."""
        files = tuple(_file(a) for a in incoming.attachments if a.source is not None)
        who = (incoming.user_id, incoming.user_name)
        return cls(incoming.conversation, incoming.text, *who, address, id, files, incoming.sent)

    def incoming(self, fetcher: Callable[[dict[str, Any]], Callable[[int], Awaitable[bytes]]]) -> Incoming:
        """The message again, its files downloaded by `fetcher` (`ChannelBot.fetcher`) from their source."""
        files = tuple(_attachment(data, fetcher) for data in self.files)
        return Incoming(self.conversation, self.text, self.user_id, self.user_name, files, self.sent)

    def encode(self) -> str:
        fields = {"c": self.conversation, "t": self.text, "u": self.user_id, "n": self.user_name, "a": self.address}
        return json.dumps({**fields, "i": self.id, "f": self.files, "s": self.sent, "d": self.decided})

    @classmethod
    def decode(cls, raw: bytes | str) -> Entry:
        data = json.loads(raw)
        fields = data["c"], data["t"], data["u"], data["n"], data["a"], data["i"], tuple(data["f"])
        return cls(*fields, data.get("s", 0.0), data.get("d"))  # (an earlier version's entry lacks "s" or "d")


class SharedQueues:
    """The Redis side of the conversations of one bot's replicas.

    Args:
        client: The Redis the replicas share.
        prefix: The bot's keys' prefix (`livebot:<platform>:<bot id>`), so bots sharing a Redis keep apart.
        replica: This replica's name (its in-flight records' owner), for leases and its Stop channel.
        ttl: LEASE_TTL (tests shorten it).
    """

    def __init__(self, client: redis.Redis, prefix: str, replica: str, *, ttl: float = LEASE_TTL) -> None:
        self.client = client
        self.replica = replica
        self.ttl = ttl
        self._prefix = prefix
        self._held_key = f"{prefix}:held"
        self._fence = f"{prefix}:fence"
        self._enqueue = client.register_script(_ENQUEUE)
        self._decide = client.register_script(_DECIDE)
        self._acquire = client.register_script(_ACQUIRE)
        self._pop = client.register_script(_POP)
        self._release = client.register_script(_RELEASE)
        self._renew = client.register_script(_RENEW)
        self._expired = client.register_script(_EXPIRED)
        self._may_run = client.register_script(_MAY_RUN)

    def _keys(self, conversation: str) -> tuple[str, str, str]:
        base = f"{self._prefix}:conv:{conversation}"
        return f"{base}:queue", f"{base}:lease", f"{base}:asker"

    @staticmethod
    def new_id() -> str:
        """A fresh entry id."""
        return uuid.uuid4().hex

    @property
    def channel(self) -> str:
        """This replica's Stop channel."""
        return self.channel_of(self.replica)

    def channel_of(self, replica: str) -> str:
        return f"{self._prefix}:control:{replica}"

    async def enqueue(self, entry: Entry, limit: int) -> str:
        """Append `entry` to its conversation's queue. Returns "held" when a replica holds the conversation (it
        answers), "free" when none does (the caller takes the lease), "orphaned" when none does but one did and
        did not let go (it died: the caller takes the conversation over), "full" when the queue has `limit`."""
        queue, lease, _ = self._keys(entry.conversation)
        status = await self._enqueue(
            keys=[queue, lease, self._held_key],
            args=[entry.encode(), limit, entry.conversation, int(self.ttl * 1000), entry.sent],
        )
        return status.decode()

    async def may_run(self, user: str, per_minute: int) -> bool:
        """Whether `user` may start a model run now: fewer than `per_minute` in the last minute, counted over
        every replica (a sliding window on Redis's clock); a yes counts this run."""
        return await self._may_run(keys=[f"{self._prefix}:runs:{user}"], args=[per_minute, self.new_id()]) == 1

    async def acquire(self, conversation: str) -> str | None:
        """Take the conversation's lease if nobody holds it; returns the lease's value (the fencing check's
        argument) or None."""
        _, lease, _ = self._keys(conversation)
        value = await self._acquire(
            keys=[lease, self._held_key, self._fence], args=[self.replica, int(self.ttl * 1000), conversation]
        )
        return value.decode() if value is not None else None

    async def peek(self, conversation: str, count: int) -> list[Entry]:
        """The first `count` entries of the queue, not taken (only the holder takes them)."""
        queue, _, _ = self._keys(conversation)
        return [Entry.decode(raw) for raw in await self.client.lrange(queue, 0, count - 1)]

    async def pop(self, conversation: str, value: str, taken: Sequence[Entry] | None) -> bool | None:
        """Take the entries `taken`, some `peek` showed, the first of them first (an entry sent earlier may have been
        inserted among them since: it stays), or every entry (None). False when another entry is first now (a
        decision, or a message sent earlier, came before them: peek again); None when the lease is no longer
        `value`."""
        queue, lease, _ = self._keys(conversation)
        ids = [] if taken is None else [entry.id for entry in taken]
        done = await self._pop(keys=[queue, lease], args=[value, *ids])
        return None if done == -1 else done == 1

    async def decide(self, entry: Entry, approval: str) -> str:
        """Queue `entry`, a decision on `approval`, at the head of its conversation's queue, if no decision on it
        was queued before (then "taken", and nothing is queued); else as `enqueue` says (never "full": a decision
        is never turned away)."""
        queue, lease, _ = self._keys(entry.conversation)
        status = await self._decide(
            keys=[queue, lease, self._held_key, f"{self._prefix}:approval:{approval}"],
            args=[entry.encode(), int(CLAIM_TTL * 1000), entry.conversation, int(self.ttl * 1000)],
        )
        return _text(status)

    async def release(
        self, conversation: str, value: str, *, hand_over: bool = False, unfinished: bool = False
    ) -> bool | None:
        """Let the lease go when the queue is empty (True); False when messages came meanwhile (go on), None when
        the lease was lost. With `hand_over`, let it go anyway: another replica answers what is queued; with
        `unfinished` too (a reply was handed over, its record written), the conversation is due even with nothing
        queued, so another replica finishes that reply at once."""
        queue, lease, asker = self._keys(conversation)
        how = "2" if unfinished else "1" if hand_over else "0"
        done = await self._release(keys=[queue, lease, self._held_key, asker], args=[value, conversation, how])
        return None if done == -1 else done == 1

    async def renew(self, held: dict[str, str]) -> list[str]:
        """Renew the leases `held` (conversation -> value); returns the conversations whose lease was lost."""
        if not held:
            return []
        keys, args = [self._held_key], [str(int(self.ttl * 1000))]
        for conversation, value in held.items():
            _, lease, asker = self._keys(conversation)
            keys += [lease, asker]
            args += [value, conversation]
        return [raw.decode() for raw in await self._renew(keys=keys, args=args)]

    async def expired(self, limit: int = 100) -> list[str]:
        """Conversations whose lease expired (their holder died) or that wait for a holder."""
        return [raw.decode() for raw in await self._expired(keys=[self._held_key], args=[limit])]

    async def running(self, conversation: str, asker: str | None) -> None:
        """Note who asked for the reply now running in `conversation` (None: none runs), for Stop presses that
        land on other replicas. It lives as long as the lease."""
        _, _, key = self._keys(conversation)
        if asker is None:
            await self.client.delete(key)
        else:
            await self.client.set(key, asker, px=int(self.ttl * 1000))

    async def holder(self, conversation: str) -> tuple[str, str] | None:
        """(replica, asker) of the reply running in `conversation` on any replica, or None when none runs."""
        _, lease, asker = self._keys(conversation)
        value, who = await self.client.mget(lease, asker)
        if value is None or who is None:
            return None
        return _text(value).rsplit("|", 1)[0], _text(who)

    async def send_stop(self, replica: str, conversation: str) -> None:
        """Ask `replica` to stop the reply of `conversation` (it holds it)."""
        await self.client.publish(self.channel_of(replica), json.dumps({"stop": conversation}))

    async def stops(self, listening: Callable[[], bool] = lambda: True) -> AsyncIterator[str]:
        """The conversations other replicas ask this one to stop, as they come (until cancelled, or `listening()`
        says no: a cancellation can be lost, see `Conversations._running`)."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            while listening():
                try:  # (a timeout, not a blocking read: the client's socket timeout would end that)
                    if not pubsub.subscribed:
                        await pubsub.subscribe(self.channel)
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                except RedisError as exc:  # redis-py reconnects and subscribes again at the next read
                    log.warning("control channel: %s; listening again in a second", type(exc).__name__)
                    await asyncio.sleep(1.0)
                    continue
                if message is None:
                    continue
                try:
                    yield str(json.loads(message["data"])["stop"])
                except (ValueError, KeyError, TypeError):
                    log.warning("a malformed control message on %s was ignored", self.channel)
        finally:
            with contextlib.suppress(RedisError):
                await pubsub.unsubscribe()
            await pubsub.aclose()


def _file(a: Attachment) -> dict[str, Any]:
    """An attachment as an entry keeps it: all but its download, which `source` names."""
    return {
        "name": a.name,
        "kind": a.kind.value,
        "mime": a.mime,
        "size": a.size,
        "duration": a.duration,
        "source": a.source,
    }


def _attachment(
    data: dict[str, Any], fetcher: Callable[[dict[str, Any]], Callable[[int], Awaitable[bytes]]]
) -> Attachment:
    """The attachment `_file` kept, with its download."""
    source = data["source"]
    return Attachment(
        data["name"], FileKind(data["kind"]), data["mime"], data["size"], fetcher(source), data["duration"], source
    )


def _text(value: bytes | str) -> str:
    """A value as redis-py returns it: bytes, or str with `decode_responses`."""
    return value.decode() if isinstance(value, bytes) else value
