"""Where each TensorFlow connection on the endpoint goes, decided by the current ChannelView.

Serving: a fresh gateway channel per connection, relayed byte for byte (one RelaySet per
attachment). Anything else: relayed to the refusal server, which answers UNAVAILABLE with the
view's message. Publishing a new view cuts the relays that belong to the old one (refusals when
the endpoint starts serving, the attachment's forwarding relays when it stops), so TensorFlow's
client reconnects and meets the new state, and a call in flight on detach fails instead of hanging.
A connection that arrives while the channel is proven and only the controller's InUse is awaited
(milliseconds away) waits for it, up to ``attach_hold_s``, rather than being refused.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

from agent.relay import ByteTally, RelaySet
from agent.vm.channel.gateway import ChannelError, open_gateway_stream
from agent.vm.channel.view import ChannelView
from agent.vm.settings import AgentTiming

log = logging.getLogger(__name__)


class ConnectionRouter:
    def __init__(self, initial: ChannelView, connect_refusal: Callable[[], socket.socket], timing: AgentTiming) -> None:
        self._connect_refusal, self._timing = connect_refusal, timing
        self._lock = threading.Lock()
        self._view_changed = threading.Condition(self._lock)
        self._view, self._generation = initial, 0
        self._forwarding: dict[str, RelaySet] = {}
        self._refusing = RelaySet()
        self.relayed = ByteTally()  # bytes forwarded to and from node gateways, for metrics
        self._gateway_trouble = ""  # why the last forward while serving failed, quoted in its refusal
        self.forwarded_connections = 0
        self.refused_connections = 0

    @property
    def view(self) -> ChannelView:
        with self._lock:
            return self._view

    def forwarding_relays(self, attachment_id: str) -> int:
        with self._lock:
            relays = self._forwarding.get(attachment_id)
        return len(relays) if relays is not None else 0

    def last_gateway_bytes_at(self, attachment_id: str) -> float:
        """Monotonic time the attachment's forwarding connections last carried bytes from the gateway (0: never)."""
        with self._lock:
            relays = self._forwarding.get(attachment_id)
        return relays.last_received_from_b() if relays is not None else 0.0

    def publish(self, view: ChannelView) -> None:
        """Make ``view`` current and cut every relay that belongs to the old state."""
        with self._lock:
            if view == self._view:
                return  # a repeated desired state: connections opening now stay valid
            self._view, self._generation = view, self._generation + 1
            self._gateway_trouble = ""
            self._view_changed.notify_all()
            keep = view.attachment_id if view.serving else None
            stale = [relays for attachment, relays in self._forwarding.items() if attachment != keep]
            self._forwarding = {a: r for a, r in self._forwarding.items() if a == keep}
        cut = sum(relays.close_all() for relays in stale)
        if view.serving:
            cut += self._refusing.close_all()
        if cut:
            log.info("endpoint is %s now; closed %d connection(s) of the previous state", view.state, cut)

    def refusal(self) -> tuple[str, str]:
        """(state, message) for a refused call; asked by the refusal server at call time."""
        with self._lock:
            view, trouble = self._view, self._gateway_trouble
        if view.serving:
            return "degraded", f"{view.message}, but the node gateway cannot be reached now ({trouble}); retry"
        return str(view.state), view.message

    def route(self, conn: socket.socket) -> None:
        """Forward or refuse ``conn``; blocks while a gateway channel opens (or InUse is a moment away)."""
        with self._lock:
            if self._view.awaiting_controller:
                self._view_changed.wait_for(lambda: not self._view.awaiting_controller, self._timing.attach_hold_s)
            view, generation = self._view, self._generation
        if view.serving:
            self._forward(conn, view, generation)
        else:
            self._refuse(conn, generation)

    def close_all(self) -> None:
        with self._lock:
            sets, self._forwarding = list(self._forwarding.values()), {}
        for relays in [*sets, self._refusing]:
            relays.close_all()

    def _forward(self, conn: socket.socket, view: ChannelView, generation: int) -> None:
        try:
            stream = open_gateway_stream(view.gateway, self._timing.gateway_timeout_s)
        except ChannelError as error:
            log.warning("cannot forward a TensorFlow connection for %s: %s", view.instance_id, error.reason)
            with self._lock:
                self._gateway_trouble = error.reason
            self._refuse(conn, generation, linger_s=self._timing.degraded_refusal_s)
            return
        with self._lock:
            if self._generation == generation:
                relays = self._forwarding.setdefault(view.attachment_id, RelaySet(self.relayed))
                relays.start(conn, stream, name=f"tf-{view.attachment_id}")
                self.forwarded_connections += 1
                return
        stream.close()  # the state changed while the gateway answered: decide again by the new one
        self.route(conn)

    def _refuse(self, conn: socket.socket, generation: int, *, linger_s: float | None = None) -> None:
        try:
            upstream = self._connect_refusal()
        except OSError as error:
            log.error("the refusal server is gone (%s); dropping a TensorFlow connection", error)
            conn.close()
            return
        with self._lock:
            became_serving = self._generation != generation and self._view.serving
            if not became_serving:
                relay = self._refusing.start(conn, upstream, name="refusal")
                self.refused_connections += 1
        if became_serving:
            upstream.close()
            self.route(conn)
        elif linger_s is not None:  # refused while serving: cut soon, so TensorFlow tries the gateway again
            timer = threading.Timer(linger_s, relay.close)
            timer.daemon = True
            timer.start()

