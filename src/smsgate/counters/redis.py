"""Rate state shared by every node of a cluster, in Redis.

The same behaviour as counters/memory.py, with each check one script call (one round
trip): a script runs atomically in Redis, so "look, then record" cannot interleave with
another node's. Every entry is a member of a sorted set scored by the time it may be
forgotten, so dropping the stale ones is one ``ZREMRANGEBYSCORE`` up to the caller's time,
exactly as the in-process version drops entries whose forget-at is at or before it. A key
expires ``keep_for`` after its last write, so keys seen once go by themselves.

Members carry what the in-process tuples carry, ``at|count|id`` for hits and
``at|digest|id`` for sends; ``at`` is ``repr(float)``, which reads back to the same float.
The id makes two equal entries two members. Times are epoch seconds from the callers'
clocks: nodes must keep their clocks in step (NTP), as for the frequency windows.

Multi-key scripts need every key on one server: use one Redis (or a primary with
replicas), not Redis Cluster.

While Redis does not answer, every call raises ``errors.Unavailable`` (the request is
refused, nothing is accepted unchecked). A failed call opens a short pause in which calls
fail at once without touching the network: these calls run on the event loop, and a Redis
that drops packets would otherwise hold every request for a socket timeout.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from smsgate import errors
from smsgate.core.frequency import Sent

log = logging.getLogger(__name__)

T = TypeVar("T")

# Redis answers in well under a millisecond on a LAN: seconds without an answer are an
# outage (the answer's limit leaves room for a loaded machine). Both can be set in the URL
# (``?socket_timeout=5``), which wins.
SOCKET_TIMEOUT = 2.0
CONNECT_TIMEOUT = 1.0
PAUSE = 1.0  # seconds calls fail at once after a failure, before one tries again

# KEYS: the counters; each keeps the sum of its members' counts in "<key>#n", so that the
# usual question (every hit still kept: the daily cap, the failed logins) is answered
# without reading them all; dropping members costs once per member.
# ARGV: since, at, forget_at, keep_ms, count, member. A count of 0 only reads (and drops
# nothing, as the in-process read drops nothing).
_COUNT_AND_RECORD = """
local since, at, count = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[5])
local function n_of(m) return tonumber(string.match(m, '^[^|]*|([^|]*)|')) end
local function at_of(m) return tonumber(string.match(m, '^([^|]*)|')) end
local out = {}
for i, key in ipairs(KEYS) do
  local sum_key = key .. '#n'
  if count ~= 0 then
    local gone = redis.call('ZRANGEBYSCORE', key, '-inf', at)
    if #gone > 0 then
      local n = 0
      for _, m in ipairs(gone) do n = n + n_of(m) end
      redis.call('ZREMRANGEBYSCORE', key, '-inf', at)
      redis.call('DECRBY', sum_key, n)
    end
  end
  local oldest = redis.call('ZRANGE', key, 0, 0)
  local total = 0
  if #oldest > 0 and at_of(oldest[1]) >= since then
    -- members are ordered by forget-at, which orders them by time (one keep-for per key)
    total = tonumber(redis.call('GET', sum_key) or '0')
  elseif #oldest > 0 then
    for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
      if at_of(m) >= since then total = total + n_of(m) end
    end
  end
  out[i] = total
  if count ~= 0 then
    redis.call('ZADD', key, ARGV[3], ARGV[6])
    redis.call('INCRBY', sum_key, count)
    redis.call('PEXPIRE', key, ARGV[4])
    redis.call('PEXPIRE', sum_key, ARGV[4])
  end
end
return out
"""

# KEYS: the slot. ARGV: at, interval, interval_ms.
_TAKE_SLOT = """
local last = redis.call('GET', KEYS[1])
if last and tonumber(ARGV[1]) - tonumber(last) < tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"""

# KEYS: the numbers' histories. ARGV: at, forget_at, keep_ms, member.
# Each history as it was before the new send is returned.
_APPEND = """
local out = {}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  out[i] = redis.call('ZRANGE', key, 0, -1)
  redis.call('ZADD', key, ARGV[2], ARGV[4])
  redis.call('PEXPIRE', key, ARGV[3])
end
return out
"""

# KEYS: the numbers' histories. ARGV: the prefix "at|digest|" of the send to take back.
_REMOVE = """
local prefix = ARGV[1]
for _, key in ipairs(KEYS) do
  for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    if string.sub(m, 1, #prefix) == prefix then
      redis.call('ZREM', key, m)
      break
    end
  end
end
return 0
"""


def connect(url: str) -> redis.Redis:
    """A client for ``url`` (a pool of connections, safe to share between threads)."""
    client = redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=CONNECT_TIMEOUT,
        # One more try on a fresh connection covers a pooled one that a Redis restart
        # closed; more would hold the event loop longer in an outage.
        retry=Retry(NoBackoff(), 1),
    )
    client.ping()  # fail at start, with the URL in the message, not on the first request
    return client


class Link:
    """Calls to one Redis, failing fast (``errors.Unavailable``) while it does not answer.

    Shared by the counters and the frequency history of a process, so that one failed
    call pauses both. The callers report the outage (smsgate.outages); its end is logged
    here.
    """

    def __init__(self, client: redis.Redis, pause: float = PAUSE) -> None:
        self.client = client
        self._pause = pause
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._reason = ""

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._down_since is not None and time.monotonic() < self._retry_at:
            raise errors.Unavailable("redis", self._reason)
        try:
            result = fn(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError) as exc:
            self._failed(exc)
            raise errors.Unavailable("redis", self._reason) from None
        if self._down_since is not None:
            self._recovered()
        return result

    def ping(self) -> None:
        self.call(self.client.ping)

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            self._reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            self._retry_at = time.monotonic() + self._pause
            if self._down_since is None:  # reported by the callers' outage log
                self._down_since = time.monotonic()

    def _recovered(self) -> None:
        with self._lock:
            if self._down_since is None:
                return
            log.warning("Redis answers again after %.1f s", time.monotonic() - self._down_since)
            self._down_since = None


class _Ids:
    """Members unique across processes: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self._prefix = f"{os.getpid():x}{uuid.uuid4().hex[:8]}"
        self._next = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}.{next(self._next)}"


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000) + 1)  # rounded up: Redis never forgets too early


class RedisCounters:
    """The Counters port for a cluster."""

    def __init__(self, link: Link, prefix: str = "smsgate:") -> None:
        self._prefix = prefix + "c:"
        self._link = link
        self._count = link.client.register_script(_COUNT_AND_RECORD)
        self._slot = link.client.register_script(_TAKE_SLOT)
        self._ids = _Ids()

    def hits_since(self, key: str, since: float) -> int:
        return self.count_and_record([key], since, since, 1.0, count=0)[0]

    def record(self, key: str, at: float, keep_for: float, count: int = 1) -> None:
        if count:
            self.count_and_record([key], at, at, keep_for, count)

    def count_and_record(
        self, keys: Sequence[str], since: float, at: float, keep_for: float, count: int = 1
    ) -> list[int]:
        member = f"{at!r}|{count}|{self._ids()}"
        args: list[str | int] = [
            repr(since),
            repr(at),
            repr(at + keep_for),
            _ms(keep_for),
            count,
            member,
        ]
        result = self._link.call(self._count, keys=[self._prefix + k for k in keys], args=args)
        return [int(n) for n in cast(list[Any], result)]

    def take_slot(self, key: str, at: float, interval: float) -> bool:
        args: list[str | int] = [repr(at), repr(interval), _ms(interval)]
        return bool(self._link.call(self._slot, keys=[self._prefix + "slot:" + key], args=args))


class RedisFrequencyState:
    """Per-number send history for a cluster. Nothing to rebuild on start: Redis keeps it
    (give Redis persistence, AOF or RDB, if caps must survive a Redis restart)."""

    shared = True  # the history outlives this process: a start must not replay it again

    def __init__(self, link: Link, prefix: str = "smsgate:") -> None:
        self._prefix = prefix + "f:"
        self._link = link
        self._append = link.client.register_script(_APPEND)
        self._remove = link.client.register_script(_REMOVE)
        self._ids = _Ids()

    def history(self, key: str) -> list[Sent]:
        members = self._link.call(self._link.client.zrange, self._prefix + key, 0, -1)
        return [_sent(m) for m in cast(list[str], members)]

    def add(self, key: str, sent: Sent, keep_for: float) -> None:
        self.append([key], sent, keep_for)

    def append(self, keys: Sequence[str], sent: Sent, keep_for: float) -> list[list[Sent]]:
        at = float(sent.at)
        member = f"{at!r}|{sent.content_digest}|{self._ids()}"
        args: list[str | int] = [repr(at), repr(at + keep_for), _ms(keep_for), member]
        result = self._link.call(self._append, keys=[self._prefix + k for k in keys], args=args)
        return [[_sent(m) for m in before] for before in cast(list[list[str]], result)]

    def remove(self, key: str, sent: Sent) -> None:
        self.discard([key], sent)

    def discard(self, keys: Sequence[str], sent: Sent) -> None:
        if keys:
            prefix = f"{float(sent.at)!r}|{sent.content_digest}|"
            self._link.call(self._remove, keys=[self._prefix + k for k in keys], args=[prefix])


def _sent(member: str) -> Sent:
    at, digest, _id = member.split("|", 2)
    return Sent(float(at), digest)
