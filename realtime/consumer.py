"""The WebSocket endpoint ``/ws/v1/``: authenticate, deliver the user's events in seq order
(live from Redis, missed ones from the log), accept chat messages and fresh tokens.

Every socket delivers through one ordered pipeline (``_drain``): a live event that skips a
seq first pulls the gap from the database, so a socket never loses or reorders events.
Protocol: docs/realtime.md.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
from collections import deque

import orjson
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from connections import services as connection_services
from core.api.throttling import UserRateThrottle
from realtime import auth, events
from realtime.auth import CLOSE_AUTH, CLOSE_EVICTED, CLOSE_SLOW
from realtime.hub import hub
from realtime.metrics import CLOSES, DELIVERY_SECONDS, EVENTS_DELIVERED

logger = logging.getLogger(__name__)

# Database work runs in the thread pool, not in one shared thread: sockets do not queue
# behind each other's queries (each thread takes a pooled connection).  Each call runs in a
# copy of the socket's context that is then dropped: asgiref copies context-local changes back
# to the caller, and Django's cache handles are context-local, so without the copy every socket
# would keep its own cache backend and Redis client alive (16 KB per idle socket, measured).
def in_thread(func):
    sync = database_sync_to_async(func, thread_sensitive=False)

    async def call(*args, **kwargs):
        return await asyncio.create_task(sync(*args, **kwargs), context=contextvars.copy_context())

    return call


SEND_FIELDS = {"type", "connection_id", "body", "ref"}
ALWAYS_DELIVERED = {"connection.removed"}  # even about a blocked user: the client drops the chat


class Throttled(Exception):
    pass


def _send_message_sync(user_id, connection_id, body) -> dict:
    """``message.send``: the REST endpoint's rate limit, validation and authorization."""
    throttle = UserRateThrottle()
    if settings.RATE_LIMIT_ENABLED and throttle.rate and not throttle.allow_key(str(user_id)):
        raise Throttled
    message = connection_services.send_message(user_id=user_id, connection_id=connection_id, body=body)
    return {"message_id": str(message.id), "connection_id": str(message.connection_id),
            "created_at": message.created_at.isoformat()}


def _error_detail(exc: ValidationError):
    return exc.message_dict if hasattr(exc, "error_dict") else exc.messages


class RealtimeConsumer(AsyncWebsocketConsumer):
    # ------------------------------------------------------------------ lifecycle

    async def connect(self):
        self.sid = uuid.uuid4().hex
        self.closed = False
        self.ready = False
        self.joined = False
        self.pending: deque[dict] = deque()
        self.draining = False
        self.resume_after: int | None = None
        self.blocked: set[str] = set()
        self.timers: list[asyncio.TimerHandle] = []
        offered = self.scope.get("subprotocols") or []
        await self.accept(auth.PROTOCOL if auth.PROTOCOL in offered else None)
        try:
            identity = await in_thread(auth.identify)(auth.token_from_scope(self.scope))
        except auth.Refused as refused:
            await self.shut(refused.code, refused.reason)
            return
        self.user_id = identity.user_id
        self.user_key = str(identity.user_id)
        self.session_id = str(identity.session_id)
        self.token_expires = identity.expires_at
        self.blocked = set(identity.hidden)
        # Subscribe before reading the counter: nothing committed after the read is missed.
        await hub().join(self)
        self.joined = True
        self.last_seq = await in_thread(events.current_seq)(self.user_id)
        self.ready = True
        await self.send_json({"type": "hello", "socket_id": self.sid, "user_id": self.user_key, "seq": self.last_seq,
                              "max_connections": settings.WS_MAX_CONNECTIONS_PER_USER,
                              "token_expires_at": int(self.token_expires)})
        self._arm_expiry()
        self._kick()  # events that arrived during the handshake

    async def disconnect(self, code):
        self.closed = True
        self._cancel_timers()
        if self.joined:
            self.joined = False
            await hub().leave(self)

    async def shut(self, code: int, reason: str) -> None:
        """Close from the server side with ``code``; deliveries stop at once."""
        if self.closed:
            return
        self.closed = True
        self._cancel_timers()
        CLOSES.labels(str(code)).inc()
        # The slot and the subscription go first: the close frame waits for the client to read
        # what is already buffered (a slow reader may take long, or never).
        if self.joined:
            self.joined = False
            await hub().leave(self)
        try:
            await self.close(code=code, reason=reason)
        except Exception:  # the client is already gone
            logger.debug("realtime: close failed", exc_info=True)

    async def send_json(self, data: dict) -> None:
        await self.send(text_data=orjson.dumps(data).decode())

    # ------------------------------------------------------- from the hub (sync, in the loop)

    def on_bus(self, message: dict) -> None:
        if self.closed:
            return
        if message.get("k") == "ev":
            if len(self.pending) >= settings.WS_MAX_PENDING_EVENTS:
                # The client reads slower than its events come: drop the backlog and the socket;
                # everything is in the log for its resume.
                self.pending.clear()
                hub().spawn(self.shut(CLOSE_SLOW, "Too far behind; reconnect and resume."))
                return
            self.pending.append(message)
            self._kick()
            return
        op = message.get("op")
        if op == "evict" and self.sid in (message.get("sids") or ()):
            hub().spawn(self.shut(CLOSE_EVICTED, "Too many connections; this one was the oldest."))
        elif op == "close" and message.get("session") in (None, self.session_id):
            hub().spawn(self.shut(int(message.get("code") or CLOSE_AUTH), str(message.get("reason") or "")[:100]))
        elif op == "block" and message.get("peer"):
            self.blocked.add(str(message["peer"]))
        elif op == "unblock" and message.get("peer"):
            self.blocked.discard(str(message["peer"]))

    def catch_up(self) -> None:
        """After a pub/sub outage: whatever was committed since ``last_seq`` comes from the log."""
        if self.ready and not self.closed and self.resume_after is None:
            self.resume_after = self.last_seq
            self._kick()

    def slot_lost(self) -> None:
        hub().spawn(self.shut(CLOSE_EVICTED, "Too many connections; this one was the oldest."))

    # -------------------------------------------------------------------- delivery

    def _kick(self) -> None:
        if self.ready and not self.draining and not self.closed:
            self.draining = True
            hub().spawn(self._drain())

    async def _drain(self) -> None:
        try:
            while not self.closed:
                if self.resume_after is not None:
                    after, self.resume_after = self.resume_after, None
                    await self._replay(after, None, how="replay")
                    continue
                if not self.pending:
                    break
                event = self.pending.popleft()
                seq = int(event["seq"])
                if seq <= self.last_seq:
                    continue  # delivered already (replayed, or a duplicate)
                if seq > self.last_seq + 1:
                    await self._replay(self.last_seq, seq - 1, how="gap")
                await self._deliver(event, "live")
        except Exception:
            logger.exception("realtime: delivery failed on socket %s", self.sid)
            hub().spawn(self.shut(1011, "Internal error; reconnect and resume."))
        finally:
            self.draining = False

    async def _replay(self, after: int, upto: int | None, how: str) -> None:
        if how == "replay":
            self.last_seq = after
            if await in_thread(events.missing_after)(self.user_id, after):
                await self.send_json({"type": "resync", "after": after,
                                      "detail": "Events after this seq are no longer kept; reload with the REST API."})
        while not self.closed:
            rows = await in_thread(events.replay)(self.user_id, self.last_seq, upto,
                                                               settings.REALTIME_REPLAY_BATCH)
            for row in rows:
                await self._deliver(row, how)
            if len(rows) < settings.REALTIME_REPLAY_BATCH:
                return

    async def _deliver(self, event: dict, how: str) -> None:
        seq = int(event["seq"])
        if seq <= self.last_seq or self.closed:
            return
        self.last_seq = seq
        if event["type"] == events.REDACTED:
            return
        if event.get("peer") in self.blocked and event["type"] not in ALWAYS_DELIVERED:
            return
        await self.send_json({"type": event["type"], "seq": seq, "data": event["data"], "at": event["at"]})
        EVENTS_DELIVERED.labels(how).inc()
        if how == "live" and "t" in event:
            DELIVERY_SECONDS.observe(max(0.0, time.time() - float(event["t"])))

    # ---------------------------------------------------------------- token expiry

    def _cancel_timers(self) -> None:
        for handle in self.timers:
            handle.cancel()
        self.timers = []

    def _arm_expiry(self) -> None:
        self._cancel_timers()
        loop = asyncio.get_running_loop()
        left = self.token_expires - time.time()
        warn_in = max(0.0, left - settings.WS_TOKEN_WARNING_S)
        self.timers = [
            loop.call_later(warn_in, lambda: hub().spawn(self._warn_expiry())),
            loop.call_later(max(0.0, left), lambda: hub().spawn(self._expire())),
        ]

    async def _warn_expiry(self) -> None:
        if not self.closed:
            await self.send_json({"type": "token.expiring", "expires_at": int(self.token_expires)})

    async def _expire(self) -> None:
        if not self.closed and time.time() >= self.token_expires:
            await self.shut(CLOSE_AUTH, "Access token has expired.")

    # ------------------------------------------------------------ client messages

    async def receive(self, text_data=None, bytes_data=None):
        if not self.ready or self.closed:
            return
        try:
            message = orjson.loads(text_data if text_data is not None else bytes_data)
        except orjson.JSONDecodeError:
            message = None
        if not isinstance(message, dict):
            await self._error(400, "Send JSON objects with a \"type\".")
            return
        kind = message.get("type")
        if kind == "resume":
            after = message.get("after")
            if not isinstance(after, int) or isinstance(after, bool) or after < 0:
                await self._error(400, {"after": ["Must be a seq (an integer >= 0)."]}, kind)
                return
            self.resume_after = after
            self._kick()
        elif kind == "auth":
            await self._reauthenticate(message.get("token"))
        elif kind == "message.send":
            await self._send_message(message)
        elif kind == "ping":
            await self.send_json({"type": "pong", "ref": message.get("ref")})
        else:
            await self._error(400, "Unknown type; expected resume, auth, message.send or ping.", kind)

    async def _error(self, status: int, detail, kind=None, ref=None) -> None:
        await self.send_json({"type": "error", "status": status, "detail": detail, "for": kind, "ref": ref})

    async def _reauthenticate(self, token) -> None:
        try:
            identity = await in_thread(auth.identify)(token)
        except auth.Refused as refused:
            await self.shut(refused.code, refused.reason)
            return
        if identity.user_id != self.user_id:
            await self.shut(CLOSE_AUTH, "The token is for another user.")
            return
        self.session_id = str(identity.session_id)
        self.token_expires = identity.expires_at
        self.blocked = set(identity.hidden)
        self._arm_expiry()
        await self.send_json({"type": "auth.ok", "token_expires_at": int(self.token_expires)})

    async def _send_message(self, message: dict) -> None:
        ref = message.get("ref")
        unknown = sorted(set(message) - SEND_FIELDS)
        if unknown:
            await self._error(400, {name: ["Unknown field."] for name in unknown}, "message.send", ref)
            return
        if not isinstance(message.get("connection_id"), str):
            await self._error(400, {"connection_id": ["Must be a connection id."]}, "message.send", ref)
            return
        try:
            sent = await in_thread(_send_message_sync)(self.user_id, message["connection_id"],
                                                                    message.get("body"))
        except ValidationError as exc:
            await self._error(400, _error_detail(exc), "message.send", ref)
        except Http404:
            await self._error(404, "Not found.", "message.send", ref)
        except PermissionDenied as exc:
            await self._error(403, str(exc) or "You do not have permission to perform this action.",
                              "message.send", ref)
        except Throttled:
            await self._error(429, "Request was throttled.", "message.send", ref)
        except Exception:
            logger.exception("realtime: message.send failed")
            await self._error(500, "Could not send the message; try again.", "message.send", ref)
        else:
            await self.send_json({"type": "message.sent", "ref": ref, **sent})
