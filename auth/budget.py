"""Each client's query budget: a leaky bucket of points, as Shopify's GraphQL Admin API keeps it.

A bucket holds up to `capacity` points and refills at `rate` points a second. An operation takes
its requested cost before it runs (refused when the bucket holds less) and gives back what it
did not use once its actual cost is known. With REDIS_URL every instance shares the buckets
through one atomic Lua script on Redis's own clock; without it each process keeps its own.
While Redis cannot be reached the process falls back to its own buckets (fail open, with a
warning at most once a minute), so that an outage of Redis costs limits, not availability.
"""

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

log = logging.getLogger("bureau.budget")

# Refills and stores one bucket atomically. A negative amount gives points back. Lua numbers
# come back to Redis as integers, so the level travels as a string.
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'level', 'stamp')
local level = tonumber(state[1]) or capacity
local stamp = tonumber(state[2]) or now
level = math.min(capacity, level + math.max(0, now - stamp) * rate)
local allowed = 0
if amount <= level then
  level = math.min(capacity, level - amount)
  allowed = 1
end
redis.call('HSET', KEYS[1], 'level', tostring(level), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return {allowed, tostring(level)}
"""


@dataclass(frozen=True)
class Throttle:
    """The outcome of a take: whether it was allowed, the points left, and when to retry."""

    allowed: bool
    available: float
    retry_after: int  # seconds until the amount asked for is in the bucket; 0 when allowed


class Budget(Protocol):
    capacity: int
    rate: int

    async def take(self, key: str, amount: int) -> Throttle: ...

    async def give_back(self, key: str, amount: int) -> float: ...

    async def close(self) -> None: ...


def _throttle(allowed: bool, level: float, amount: int, rate: int) -> Throttle:
    retry = 0 if allowed else max(1, math.ceil((amount - level) / rate))
    return Throttle(allowed, level, retry)


class LocalBudget:
    """The buckets of this process. Full buckets are forgotten, so that memory follows the clients
    seen in the last capacity/rate seconds, not every client ever seen."""

    def __init__(self, capacity: int, rate: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity, self.rate = capacity, rate
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}

    def _level(self, key: str, now: float) -> float:
        level, stamp = self.buckets.get(key, (float(self.capacity), now))
        return min(float(self.capacity), level + max(0.0, now - stamp) * self.rate)

    def _apply(self, key: str, amount: int) -> tuple[bool, float]:
        now = self.clock()
        level = self._level(key, now)
        allowed = amount <= level
        if allowed:
            level = min(float(self.capacity), level - amount)
        self.buckets[key] = (level, now)
        if len(self.buckets) > 10_000:
            self.buckets = {k: v for k, v in self.buckets.items() if self._level(k, now) < self.capacity}
        return allowed, level

    async def take(self, key: str, amount: int) -> Throttle:
        allowed, level = self._apply(key, amount)
        return _throttle(allowed, level, amount, self.rate)

    async def give_back(self, key: str, amount: int) -> float:
        return self._apply(key, -amount)[1]

    async def close(self) -> None:
        return None


class RedisBudget:
    """The buckets of every instance, in Redis under `prefix`."""

    WARN_EVERY = 60.0

    def __init__(self, url: str, capacity: int, rate: int, prefix: str) -> None:
        self.capacity, self.rate, self.prefix = capacity, rate, prefix
        # Short timeouts: a Redis that hangs must not hold requests up, they fall back instead.
        self.client = redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        self.script = self.client.register_script(_TAKE)
        self.fallback = LocalBudget(capacity, rate)
        self.ttl = math.ceil(capacity / rate) + 1  # a bucket untouched this long is full: let it go
        self._warned_at: float | None = None

    async def _apply(self, key: str, amount: int) -> tuple[bool, float] | None:
        try:
            allowed, level = await self.script(keys=[self.prefix + key],
                                               args=[self.capacity, self.rate, amount, self.ttl])
        except (RedisError, OSError) as exc:
            now = time.monotonic()
            if self._warned_at is None or now - self._warned_at >= self.WARN_EVERY:
                self._warned_at = now
                log.warning("Redis unreachable for query budgets (%s); this process keeps its own until it is back",
                            type(exc).__name__)
            return None
        if self._warned_at is not None:
            self._warned_at = None
            log.warning("Redis reachable again: query budgets are shared again")
        return bool(allowed), float(level)

    async def take(self, key: str, amount: int) -> Throttle:
        applied = await self._apply(key, amount)
        if applied is None:
            return await self.fallback.take(key, amount)
        return _throttle(*applied, amount, self.rate)

    async def give_back(self, key: str, amount: int) -> float:
        applied = await self._apply(key, -amount)
        if applied is None:
            return await self.fallback.give_back(key, amount)
        return applied[1]

    async def close(self) -> None:
        await self.client.aclose()


def budget_for(redis_url: str | None, capacity: int, rate: int, prefix: str) -> Budget:
    if redis_url:
        return RedisBudget(redis_url, capacity, rate, prefix)
    return LocalBudget(capacity, rate)
