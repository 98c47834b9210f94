"""The sockets of one ASGI process: their Redis subscriptions (one channel per user with a
socket here), their slots under the per-user cap, and the heartbeats that keep slots alive.

One ``Hub`` per process, created on first use in the server's event loop.
Design: docs/realtime.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

import orjson
from django.conf import settings
from redis import asyncio as aioredis

from realtime import bus, heap
from realtime.metrics import CAP_EVICTIONS, OPEN_SOCKETS

logger = logging.getLogger(__name__)

# KEYS: heartbeats, births.  ARGV: now, stale before, socket id, cap, key TTL.
# Drops stale slots, takes one, and returns the oldest sockets beyond the cap (now evicted).
_JOIN = """
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
for _, member in ipairs(stale) do
  redis.call('ZREM', KEYS[1], member)
  redis.call('ZREM', KEYS[2], member)
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[3])
local cap = tonumber(ARGV[4])
local count = redis.call('ZCARD', KEYS[2])
local evicted = {}
if count > cap then
  evicted = redis.call('ZRANGE', KEYS[2], 0, count - cap - 1)
  for _, member in ipairs(evicted) do
    redis.call('ZREM', KEYS[1], member)
    redis.call('ZREM', KEYS[2], member)
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return evicted
"""

# KEYS: heartbeats, births.  ARGV: now, socket id, key TTL.  0 when the slot is gone (evicted).
_TOUCH = """
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  return 1
end
return 0
"""


class Socket(Protocol):
    sid: str
    user_key: str

    def on_bus(self, message: dict) -> None: ...

    def catch_up(self) -> None: ...

    def slot_lost(self) -> None: ...


class Hub:
    def __init__(self) -> None:
        # No socket timeout: the subscriber waits for messages as long as it takes.
        self.redis = aioredis.Redis.from_url(settings.REALTIME_REDIS_URL, socket_connect_timeout=2)
        self.pubsub = self.redis.pubsub()
        self.sockets: dict[str, set[Socket]] = {}
        self.lock = asyncio.Lock()
        self.tasks: set[asyncio.Task] = set()
        self._join = self.redis.register_script(_JOIN)
        self._touch = self.redis.register_script(_TOUCH)
        self._reader: asyncio.Task | None = None
        self._beat: asyncio.Task | None = None
        self._gc: asyncio.Task | None = None

    def spawn(self, coro) -> None:
        """Run ``coro`` in the background, keeping a reference until it ends."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    @property
    def _key_ttl(self) -> int:
        return int(settings.WS_STALE_S * 2) + 1

    async def join(self, sock: Socket) -> None:
        """Subscribe to the user's channel (first socket of the user here), take a slot, evict beyond the cap."""
        async with self.lock:
            group = self.sockets.get(sock.user_key)
            if group is None:
                group = self.sockets[sock.user_key] = set()
                await self.pubsub.subscribe(bus.user_channel(sock.user_key))
            group.add(sock)
            if self._reader is None:
                self._reader = asyncio.ensure_future(self._read())
                self._beat = asyncio.ensure_future(self._heartbeat())
                self._gc = asyncio.ensure_future(heap.run())
        OPEN_SOCKETS.inc()
        now = time.time()
        evicted = await self._join(keys=list(bus.slot_keys(sock.user_key)), args=[
            now, now - settings.WS_STALE_S, sock.sid, settings.WS_MAX_CONNECTIONS_PER_USER, self._key_ttl])
        if evicted:
            CAP_EVICTIONS.inc(len(evicted))
            # The instance holding each (maybe this one) closes it when the message comes back.
            await self.redis.publish(bus.user_channel(sock.user_key), orjson.dumps(
                {"k": "ctl", "op": "evict", "sids": [sid.decode() for sid in evicted]}))

    async def leave(self, sock: Socket) -> None:
        async with self.lock:
            group = self.sockets.get(sock.user_key)
            if group is None or sock not in group:
                return
            group.discard(sock)
            if not group:
                del self.sockets[sock.user_key]
                await self.pubsub.unsubscribe(bus.user_channel(sock.user_key))
        OPEN_SOCKETS.dec()
        heartbeats, births = bus.slot_keys(sock.user_key)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.zrem(heartbeats, sock.sid)
            pipe.zrem(births, sock.sid)
            await pipe.execute()
        except Exception:  # the slot then frees itself after WS_STALE_S
            logger.warning("realtime: could not free the slot of socket %s", sock.sid, exc_info=True)

    async def _read(self) -> None:
        """Dispatch every message of the subscribed channels to this process's sockets."""
        broken = False
        while True:
            try:
                message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                if not broken:
                    logger.warning("realtime: pub/sub connection lost; reconnecting", exc_info=True)
                broken = True
                await asyncio.sleep(1.0)
                continue
            if broken:
                # Resubscribed (redis-py does it on reconnect); what was published meanwhile is in the log.
                broken = False
                for group in list(self.sockets.values()):
                    for sock in list(group):
                        sock.catch_up()
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            user_key = bus.user_from_channel(channel.decode() if isinstance(channel, bytes) else channel)
            listeners = self.sockets.get(user_key)
            if not listeners:
                continue
            try:
                data = orjson.loads(message["data"])
            except orjson.JSONDecodeError:
                continue
            for sock in list(listeners):
                sock.on_bus(data)

    async def _heartbeat(self) -> None:
        """Refresh every local socket's slot; a socket whose slot is gone was evicted."""
        while True:
            await asyncio.sleep(settings.WS_HEARTBEAT_S)
            socks = [sock for group in list(self.sockets.values()) for sock in group]
            if not socks:
                continue
            try:
                now = time.time()
                results: list = []
                for start in range(0, len(socks), 1000):
                    pipe = self.redis.pipeline(transaction=False)
                    for sock in socks[start:start + 1000]:
                        await self._touch(keys=list(bus.slot_keys(sock.user_key)),
                                          args=[now, sock.sid, self._key_ttl], client=pipe)
                    results += await pipe.execute()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("realtime: heartbeat failed", exc_info=True)
                continue
            for sock, alive in zip(socks, results, strict=True):
                if not alive:
                    sock.slot_lost()


_hub: Hub | None = None


def hub() -> Hub:
    global _hub
    if _hub is None:
        _hub = Hub()
    return _hub
