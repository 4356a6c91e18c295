"""permessage-deflate (RFC 7692) for wsproto, server side, with bounded memory.

wsproto's own `PerMessageDeflate` compresses with zlib's default memLevel, accepts whatever window
the client asks of the server, inflates a client that did not negotiate its window with the
server's (smaller) window, and inflates without an output limit (a small frame can expand to
gigabytes). This one, written against wsproto's public `Extension` interface:

- compresses with `window_bits` and `mem_level`, or a smaller window if the client asks for one;
- asks the client to use at most `window_bits` when it offers `client_max_window_bits`, and
  otherwise inflates with the 32 KiB window the client may use;
- creates zlib objects on first use, so an idle connection holds none;
- inflates at most `max_size` bytes per message: more is close 1009.
"""

from __future__ import annotations

import zlib

from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

_TAIL = b"\x00\x00\xff\xff"
_DATA_OPCODES = (Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION)


class ServerDeflate(Extension):
    name = "permessage-deflate"

    def __init__(self, window_bits: int, mem_level: int, max_size: int) -> None:
        self.window_bits = window_bits
        self.mem_level = mem_level
        self.max_size = max_size
        self.server_bits = window_bits
        self.client_bits = 15
        self.server_no_context = False
        self.client_no_context = False
        self._enabled = False
        self._deflater: zlib._Compress | None = None
        self._inflater: zlib._Decompress | None = None
        self._frame_is_data = False
        self._message_compressed = False
        self._inflated = 0  # bytes inflated in the current message

    def enabled(self) -> bool:
        return self._enabled

    def offer(self) -> bool | str:
        return False  # client side only; never called on a server

    def accept(self, offer: str) -> bool | str | None:
        if self._enabled:
            return None  # first acceptable offer wins; later ones are declined
        params: dict[str, str | None] = {}
        for item in offer.split(";")[1:]:
            key, eq, text = (part.strip() for part in item.partition("="))
            if not key or key in params or (eq and not text):
                return None
            params[key] = text.strip('"') if eq else None
        server_bits = self.window_bits
        client_bits = 15
        response: list[str] = []
        for name, value in params.items():
            if name in ("server_no_context_takeover", "client_no_context_takeover") and value is None:
                response.append(name)
            elif name == "server_max_window_bits" and value is not None and value.isdigit():
                if not 9 <= int(value) <= 15:
                    return None  # zlib cannot compress with an 8-bit window
                server_bits = min(server_bits, int(value))
            elif name == "client_max_window_bits" and (value is None or value.isdigit()):
                client_bits = min(self.window_bits, int(value) if value else 15)
                if client_bits < 8:
                    return None
                response.append(f"client_max_window_bits={client_bits}")
            else:
                return None
        response.append(f"server_max_window_bits={server_bits}")
        self.server_bits = server_bits
        self.client_bits = max(client_bits, 9)  # inflating with a larger window is always safe
        self.server_no_context = "server_no_context_takeover" in params
        self.client_no_context = "client_no_context_takeover" in params
        self._enabled = True
        return "; ".join(response)

    # Inbound

    def frame_inbound_header(
        self, proto: FrameDecoder | FrameProtocol, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseReason | RsvBits:
        if opcode.iscontrol():
            if rsv.rsv1:
                return CloseReason.PROTOCOL_ERROR
            self._frame_is_data = False
            return RsvBits(False, False, False)
        self._frame_is_data = True
        if opcode is Opcode.CONTINUATION:
            if rsv.rsv1:
                return CloseReason.PROTOCOL_ERROR
        else:
            self._message_compressed = rsv.rsv1
            self._inflated = 0
        return RsvBits(True, False, False)

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        if not (self._frame_is_data and self._message_compressed) or not data:
            return data
        return self._inflate(data)

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        if not (fin and self._frame_is_data and self._message_compressed):
            return None
        result = self._inflate(_TAIL)
        self._message_compressed = False
        if self.client_no_context:
            self._inflater = None
        return result

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        inflater = self._inflater
        if inflater is None:
            inflater = self._inflater = zlib.decompressobj(-self.client_bits)
        budget = self.max_size - self._inflated
        try:
            out = inflater.decompress(data, budget + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated += len(out)
        if len(out) > budget or inflater.unconsumed_tail:
            return CloseReason.MESSAGE_TOO_BIG
        return out

    # Outbound

    def frame_outbound(
        self, proto: FrameDecoder | FrameProtocol, opcode: Opcode, rsv: RsvBits, data: bytes, fin: bool
    ) -> tuple[RsvBits, bytes]:
        if opcode not in _DATA_OPCODES:
            return rsv, data
        if opcode is not Opcode.CONTINUATION:
            rsv = RsvBits(True, rsv.rsv2, rsv.rsv3)
        deflater = self._deflater
        if deflater is None:
            deflater = self._deflater = zlib.compressobj(
                zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self.server_bits, self.mem_level
            )
        out = deflater.compress(data)
        if fin:
            out += deflater.flush(zlib.Z_SYNC_FLUSH)
            if out.endswith(_TAIL):
                out = out[:-4]
            if self.server_no_context:
                self._deflater = None
        return rsv, out
