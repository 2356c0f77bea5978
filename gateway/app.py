"""The gateway: wires bus, store, registry and chat together behind one WebSocket server."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http
import logging
import ssl
import zoneinfo
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from kafka_bridge import InMemoryBus, MessageBus
from kafka_bridge.settings import KafkaSettings
from persistence import (
    ConnectionLog,
    InMemoryConnectionLog,
    InMemoryPresence,
    InMemoryStore,
    MessageStore,
    PresenceStore,
)
from protocol import HeartBeatPolicy, Limits, SubscriptionPolicy

from .chat.handlers import Chat
from .chat.persister import Persister
from .chat.presence import PresenceTracker
from .chat.recovery import RecentMessages
from .chat.registry import SubscriptionRegistry
from .chat.routing import Router
from .chat.service import ChatService
from .config import Config
from .http.api import HttpApi, connection_class
from .http.backend import BackendApi
from .http.responses import Cors, error_response
from .metrics import Metrics
from .security.access import Access
from .security.auth import CREDENTIAL_HEADERS, Authenticator
from .security.authorization import ClaimAuthorizer, HttpAuthorizer, RoomAuthorizer
from .security.limits import ConnectionCounts, TokenBucket
from .transport.connection import SERVER_NAME, StompConnection
from .transport.flusher import Flusher
from .transport.framing import Framing, RawFraming, SockJSFraming
from .transport.heartbeats import HeartBeatWheel, tick_for
from .transport.peers import remote_host
from .transport.shared import Shared
from .transport.sockjs import Route
from .workers import WorkerMetrics

__all__ = ["SUBPROTOCOLS", "Gateway"]

logger = logging.getLogger(__name__)

# The STOMP over WebSocket subprotocols, most preferred first.
SUBPROTOCOLS = (Subprotocol("v12.stomp"), Subprotocol("v11.stomp"), Subprotocol("v10.stomp"))


def select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    """Pick the highest STOMP subprotocol offered; accept clients offering none."""
    return next((name for name in SUBPROTOCOLS if name in offered), None)


def make_bus(config: Config) -> MessageBus:
    """Return the Kafka bus when ``--kafka-bootstrap`` is set, else the in-memory one."""
    if not config.kafka_bootstrap:
        return InMemoryBus()
    from kafka_bridge.kafka import KafkaBus  # aiokafka only when asked for

    return KafkaBus(config.component(KafkaSettings))


def make_store(config: Config) -> MessageStore:
    """Return the MongoDB store when ``--mongo-uri`` is set, else the in-memory one."""
    if not config.mongo_uri:
        return config.component(InMemoryStore)
    from persistence.mongo import MongoStore  # pymongo only when asked for

    return MongoStore(config.mongo_uri, zone=zoneinfo.ZoneInfo(config.timezone))


def make_backend_stores(config: Config, store: MessageStore) -> tuple[PresenceStore, ConnectionLog]:
    """Return presence and connection log in the store's MongoDB, else in memory."""
    if config.mongo_uri:
        from persistence.mongo import MongoStore

        if isinstance(store, MongoStore):
            from persistence.mongo_connections import MongoConnectionLog
            from persistence.mongo_presence import MongoPresence

            presence = MongoPresence(store.database, ttl=config.presence_ttl)
            return presence, MongoConnectionLog(store.database)
    return InMemoryPresence(), InMemoryConnectionLog()


def make_authenticator(config: Config) -> Authenticator | None:
    """Return the token checker when a key is configured, else None (no authentication)."""
    return Authenticator(config) if config.authentication else None


def make_authorizer(config: Config) -> RoomAuthorizer | None:
    """Return who decides room access per ``--room-authorization``, or None (anyone)."""
    if config.room_authorization == "claim":
        return ClaimAuthorizer()
    if config.room_authorization == "http":
        return HttpAuthorizer(
            config.room_authorization_url,
            cache_seconds=config.room_authorization_cache,
            timeout=config.room_authorization_timeout,
        )
    return None


def make_tls_context(config: Config) -> ssl.SSLContext | None:
    """Return the server TLS context of ``--tls-cert``/``--tls-key``, or None."""
    if not config.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context


class Gateway:
    """
    One gateway instance.

    Args:
        config: The settings.
        bus: The message bus; the in-memory bus by default.
        store: The message store; the in-memory store by default.
        worker: Index and metrics directory of a worker of ``--workers``
            (it shares its port, and ``/metrics`` covers every worker).

    Attributes:
        registry: Local subscriptions (tests read its size).
        connections: Live connections.
        metrics: What ``/metrics`` shows.

    """

    def __init__(
        self,
        config: Config,
        *,
        bus: MessageBus | None = None,
        store: MessageStore | None = None,
        worker: tuple[int, Path] | None = None,
    ) -> None:
        self.config = config
        self.limits = config.component(Limits)
        self.heart_beat_policy = config.component(HeartBeatPolicy)
        self.metrics = Metrics()
        self.bus: MessageBus = bus or make_bus(config)
        self.store: MessageStore = store or make_store(config)
        self.registry = SubscriptionRegistry()
        self.flusher = Flusher()
        self.heart_beats = HeartBeatWheel(
            tick_for(config.heartbeat_floor, config.heartbeat_interval, config.sockjs_heartbeat)
        )
        self.router = Router(
            config.app_prefix, config.broker_prefix, allow_broker_send=config.allow_broker_send
        )
        self.chat = ChatService(
            self.bus,
            self.registry,
            self.router,
            zone=zoneinfo.ZoneInfo(config.timezone),
            max_message_length=config.max_message_length,
            max_nickname_length=config.max_nickname_length,
            recent=config.component(RecentMessages),
            metrics=self.metrics,
        )
        self.worker_metrics = (
            None if worker is None else WorkerMetrics(self.metrics.render, *worker)
        )
        self.persister = Persister(self.bus, self.store)
        presence_store, self.connection_log = make_backend_stores(config, self.store)
        self.presence = PresenceTracker(presence_store, self.router, log=self.connection_log)
        self.authenticator = make_authenticator(config)
        self.authorizer = make_authorizer(config)
        access = Access(self.authenticator, self.authorizer, config.service_token)
        backend = BackendApi(
            self.chat,
            self.store,
            presence_store,
            self.connection_log,
            access=access,
            zone=zoneinfo.ZoneInfo(config.timezone),
        )
        self.http = HttpApi(
            config.endpoint,
            self.store,
            demo_page=config.demo_page,
            readiness=self.readiness,
            backend=backend,
            access=access,
            cors=Cors(config.allowed_origin),
            metrics=self.metrics.render
            if self.worker_metrics is None
            else self.worker_metrics.render,
        )
        self.connection_counts = ConnectionCounts(config.max_connections_per_address)
        self._shared = self._connection_services()
        self.connections: set[StompConnection] = set()
        self.metrics.connections = self.connections.__len__
        self.metrics.subscriptions = self.registry.__len__
        self.metrics.bus_lag = self.bus.fan_out_lag
        self.metrics.bus_reads = self.bus.fan_out_counts
        self.metrics.persister_lag = lambda: self.persister.lag
        self._idle = asyncio.Event()
        self._server: Server | None = None
        self._resources = contextlib.AsyncExitStack()  # what start() started, to release

    def _connection_services(self) -> Shared:
        """What every connection gets: the transport's parts and the chat handlers."""
        config = self.config
        chat = Chat(
            service=self.chat,
            router=self.router,
            registry=self.registry,
            presence=self.presence,
            connection_log=self.connection_log,
            authenticator=self.authenticator,
            authorizer=self.authorizer,
            store=self.store,
            bus=self.bus,
            persister=self.persister,
            metrics=self.metrics,
            member_header=config.member_header,
            recovery_timeout=config.recovery_timeout,
        )
        return Shared(
            settings=config,
            limits=self.limits,
            heart_beat_policy=self.heart_beat_policy,
            subscription_policy=config.component(SubscriptionPolicy),
            metrics=self.metrics,
            heart_beats=self.heart_beats,
            flusher=self.flusher,
            subscriptions=self.registry,
            handlers=chat,
            send_budget=functools.partial(TokenBucket, config.send_rate, config.send_burst),
            redacted=frozenset(CREDENTIAL_HEADERS),
        )

    async def readiness(self) -> str | None:
        """Return None when bus and store are reachable and history keeps up."""
        reason = await self.bus.check() or await self.store.check()
        if reason is None and self.persister.lag > self.config.max_persister_lag:
            reason = f"persister lag {self.persister.lag} is over {self.config.max_persister_lag}"
        return reason

    @property
    def port(self) -> int:
        """The TCP port the server listens on (useful with port 0)."""
        assert self._server is not None, "not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        """
        Connect the store and the bus, then start listening. Each resource
        registers its cleanup as it starts: :meth:`shutdown` releases them in
        reverse, and a failure half-way releases at once those already started.
        """
        async with contextlib.AsyncExitStack() as stack:
            await self.store.start()
            stack.push_async_callback(self.store.close)
            # Runs once the bus is closed: stores what this instance still holds.
            stack.push_async_callback(self.persister.close)
            await self.bus.start()
            stack.push_async_callback(self.bus.close)
            self.persister.start()
            # Runs before the bus closes: a batch the store refuses then stays on the bus.
            stack.callback(self.persister.stop_retrying)
            await self.presence.store.start()
            stack.push_async_callback(self.presence.store.close)
            await self.connection_log.start()
            stack.push_async_callback(self.connection_log.close)
            self._server = await self._listen()
            stack.push_async_callback(_closed_server, self._server)
            if self.worker_metrics is not None:
                sharing = asyncio.create_task(_share_metrics(self.worker_metrics))
                stack.callback(sharing.cancel)
            self._resources = stack.pop_all()
        logger.info(
            "listening on %s:%d endpoints=%s tls=%s",
            self.config.host,
            self.port,
            ",".join(self.config.endpoint),
            "on" if self.config.tls_cert else "off",
        )
        if not self.config.authentication and not self.config.allowed_origin:
            logger.warning(
                "authentication is off and every origin is allowed: any web page can "
                "connect its visitors (see --jwt-secret, --allowed-origin)"
            )

    async def _listen(self) -> Server:
        return await serve(
            self._serve,
            self.config.host,
            self.config.port,
            subprotocols=list(SUBPROTOCOLS),
            select_subprotocol=select_subprotocol,
            compression="deflate" if self.config.permessage_deflate else None,
            process_request=self._process_request,
            create_connection=connection_class(self.config.max_frame_size),
            server_header=SERVER_NAME,
            # A WebSocket message may carry several frames; each is checked by the parser.
            max_size=max(2**20, 2 * self.config.max_frame_size),
            open_timeout=self.config.handshake_timeout,
            ssl=make_tls_context(self.config),
            reuse_port=self.worker_metrics is not None,  # workers share the port
        )

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """Refuse foreign origins and address floods before the handshake, else serve HTTP."""
        kind = self.http.route(request.path)
        if kind in (Route.RAW, Route.SOCKJS, Route.INFO):
            # Browsers always send Origin (RFC 6455 §4.1); other clients may omit it.
            origins = request.headers.get_all("Origin")
            refused = [origin for origin in origins if not self.http.cors.allows(origin)]
            if refused:
                origin = refused[0]
                logger.info("refused origin %r remote=%s", origin, remote_host(connection))
                self.metrics.refused("origin not allowed")
                refusal = error_response(http.HTTPStatus.FORBIDDEN, f"origin {origin} not allowed")
                return self.http.cors.grant(refusal, origin)
        host = remote_host(connection)
        if kind in (Route.RAW, Route.SOCKJS) and self.connection_counts.full(host):
            logger.warning("refused connection: too many from %s", host)
            self.metrics.refused("too many connections per address")
            return error_response(
                http.HTTPStatus.TOO_MANY_REQUESTS,
                f"at most {self.config.max_connections_per_address} connections per address",
            )
        return await self.http.process_request(connection, request)

    async def _serve(self, websocket: ServerConnection) -> None:
        assert websocket.request is not None
        sockjs = self.http.route(websocket.request.path) is Route.SOCKJS
        framing: Framing = SockJSFraming(self.config.sockjs_heartbeat) if sockjs else _RAW
        # The handshake's headers are not read after it: a few KiB per idle connection.
        websocket.request.headers.clear()
        if websocket.response is not None:
            websocket.response.headers.clear()
        connection = StompConnection(websocket, framing, self._shared)
        self.connections.add(connection)
        self.connection_counts.opened(remote_host(websocket))
        self._idle.clear()
        try:
            await connection.run()
        finally:
            self.connection_counts.closed(remote_host(websocket))
            self.connections.discard(connection)
            if not self.connections:
                self._idle.set()

    async def drain(self, reason: str = "server restarting") -> None:
        """
        Restart gracefully (SIGTERM): answer ``/readyz`` and new WebSocket
        handshakes with 503 at once, let connected clients go on for
        ``--drain-period`` seconds (none when no client is connected), then
        shut down, telling every session ``reason``.
        """
        self.http.draining = True
        if self.connections and self.config.drain_period > 0:
            logger.info(
                "draining %d sessions for %.1f s", len(self.connections), self.config.drain_period
            )
            await asyncio.sleep(self.config.drain_period)
        await self.shutdown(reason)

    async def shutdown(self, reason: str = "server shutting down") -> None:
        """Stop accepting, tell every session why, drain, and close bus and store."""
        self.http.draining = True
        self.http.serving = False
        if self._server is not None:
            self._server.close(close_connections=False)
        if self.connections:
            logger.info("closing %d sessions: %s", len(self.connections), reason)
            # Each session's SENDs awaiting the bus get their RECEIPTs before the ERROR.
            going = [connection.going_away(reason) for connection in self.connections]
            try:
                await asyncio.wait_for(self._closed(going), self.config.shutdown_timeout)
            except TimeoutError:
                logger.warning("%d sessions still open at shutdown", len(self.connections))
        await self._resources.aclose()
        logger.info("stopped")

    async def _closed(self, going: list[Coroutine[Any, Any, None]]) -> None:
        await asyncio.gather(*going)
        await self._idle.wait()


_RAW = RawFraming()  # stateless, shared by all raw connections


async def _closed_server(server: Server) -> None:
    """Close ``server`` and the connections it still has."""
    server.close()
    await server.wait_closed()


async def _share_metrics(metrics: WorkerMetrics) -> None:
    """Keep this worker's metrics readable by the others."""
    while True:
        metrics.share()
        await asyncio.sleep(metrics.SHARE_INTERVAL)
