"""Engine adapter over websockets' sans-I/O `ServerProtocol` (websockets >= 13).

The HTTP layer has already parsed the upgrade head, so the protocol object starts in the OPEN state
(its parser reads frames, not a request) and `process_request` only validates the handshake and
negotiates permessage-deflate. The 101 response itself is written by the shared cycle.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Sequence
from typing import Any, cast

from websockets.datastructures import Headers
from websockets.exceptions import InvalidHandshake, InvalidUpgrade
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import PerMessageDeflate, ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import OPEN
from websockets.server import ServerProtocol

from palfrey.websocket.engine import CLOSE, DATA, FAIL, PONG, Event, HandshakeError
from palfrey.websocket.settings import WebSocketSettings

# websockets logs "connection closed" at INFO for every connection: keep that out of palfrey's log.
_LOGGER = logging.getLogger("palfrey.websocket.websockets")
_LOGGER.setLevel(logging.WARNING)

_TEXT, _BINARY, _CONT, _PONG, _CLOSE = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PONG, Opcode.CLOSE


class _LazyDeflate(PerMessageDeflate):
    """websockets' permessage-deflate with its zlib objects made on first use.

    websockets creates both when the connection opens (~30 KiB of touched memory with palfrey's
    settings); made lazily, a connection that has not exchanged a message yet holds none. Should a
    websockets release rename them, nothing is removed and behaviour is simply eager again.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        state = getattr(self, "__dict__", None)
        if state is not None:
            state.pop("decoder", None)
            state.pop("encoder", None)

    def __getattr__(self, name: str) -> Any:
        if name == "decoder":
            value: Any = zlib.decompressobj(wbits=-self.remote_max_window_bits)
        elif name == "encoder":
            value = zlib.compressobj(wbits=-self.local_max_window_bits, **self.compress_settings)
        else:
            raise AttributeError(name)
        setattr(self, name, value)
        return value


class _DeflateFactory(ServerPerMessageDeflateFactory):
    def process_request_params(
        self, params: Sequence[tuple[str, str | None]], accepted_extensions: Sequence[Extension]
    ) -> tuple[list[tuple[str, str | None]], PerMessageDeflate]:
        response, made = super().process_request_params(params, accepted_extensions)
        lazy = _LazyDeflate(
            made.remote_no_context_takeover,
            made.local_no_context_takeover,
            made.remote_max_window_bits,
            made.local_max_window_bits,
            made.compress_settings,
        )
        return response, lazy


class WebsocketsEngine:
    __slots__ = ("_failed", "_proto")

    def __init__(self, settings: WebSocketSettings, extensions: list[ServerPerMessageDeflateFactory]) -> None:
        self._proto = ServerProtocol(
            extensions=extensions, max_size=settings.max_size, state=OPEN, logger=_LOGGER
        )
        self._failed = False

    def handshake(self, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[str, str | None]:
        fields = Headers([(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers])
        try:
            accept, extensions, _ = self._proto.process_request(Request(path, fields))
        except InvalidUpgrade as exc:
            raise HandshakeError(426, str(exc), [(b"upgrade", b"websocket")]) from None
        except InvalidHandshake as exc:
            cause = f"{exc}; {exc.__cause__}" if exc.__cause__ is not None else str(exc)
            raise HandshakeError(400, cause) from None
        return accept, extensions

    def receive(self, data: bytes) -> tuple[list[Event], list[bytes]]:
        proto = self._proto
        if self._failed:
            return [], []
        proto.receive_data(data)
        events: list[Event] = []
        # In the OPEN state a server protocol yields frames only (no Request/Response).
        for frame in cast("list[Frame]", proto.events_received()):
            opcode = frame.opcode
            if opcode is _TEXT:
                events.append((DATA, frame.data, True, frame.fin))
            elif opcode is _BINARY:
                events.append((DATA, frame.data, False, frame.fin))
            elif opcode is _CONT:
                events.append((DATA, frame.data, None, frame.fin))
            elif opcode is _PONG:
                events.append((PONG, frame.data))
            elif opcode is _CLOSE and proto.close_rcvd is not None:
                events.append((CLOSE, proto.close_rcvd.code, proto.close_rcvd.reason))
            # PING: websockets has queued the pong already.
        if proto.parser_exc is not None:
            self._failed = True
            sent = proto.close_sent
            if sent is not None:
                events.append((FAIL, sent.code, sent.reason))
            else:  # EOFError: the client closed TCP without a close frame
                events.append((FAIL, 1006, ""))
        return events, proto.data_to_send()

    def send_text(self, text: str) -> list[bytes]:
        self._proto.send_text(text.encode("utf-8"))
        return self._proto.data_to_send()

    def send_bytes(self, data: bytes) -> list[bytes]:
        self._proto.send_binary(data)
        return self._proto.data_to_send()

    def send_ping(self, payload: bytes) -> list[bytes]:
        self._proto.send_ping(payload)
        return self._proto.data_to_send()

    def send_close(self, code: int, reason: str) -> list[bytes]:
        self._proto.send_close(code, reason)
        return self._proto.data_to_send()

    def fail(self, code: int, reason: str) -> list[bytes]:
        self._failed = True
        self._proto.fail(code, reason)
        return self._proto.data_to_send()


def factory(settings: WebSocketSettings) -> Callable[[], WebsocketsEngine]:
    extensions: list[ServerPerMessageDeflateFactory] = []
    if settings.per_message_deflate:
        extensions.append(
            _DeflateFactory(
                server_max_window_bits=settings.window_bits,
                client_max_window_bits=settings.window_bits,
                compress_settings={"memLevel": settings.mem_level},
            )
        )

    def new_engine() -> WebsocketsEngine:
        return WebsocketsEngine(settings, extensions)

    return new_engine
