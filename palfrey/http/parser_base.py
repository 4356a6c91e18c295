"""What both parser adapters share: the request-head limits and the sink they report to.

Each adapter turns bytes into the same three calls on its sink (the connection protocol):
`on_head(method, target, version, headers, framing)`, `on_body(data)`, `on_message_complete()`,
and raises `ParseError` for anything it will not pass on. Limits hold however the bytes arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from palfrey.http.head import Framing

DEFAULT_HEAD_LIMIT = 32768  # nginx's default ceiling (4 x 8 KiB buffers); h11 and Node use 16 KiB


@dataclass(frozen=True, slots=True)
class Limits:
    """Request-head limits, the same for both parsers (gunicorn's names, plus the whole head's size).

    `head` bounds the request line and field lines with their CRLFs (the blank line that ends the head
    is not counted), and a chunked body's trailer section.
    """

    request_line: int
    fields: int
    field_size: int
    head: int = DEFAULT_HEAD_LIMIT


class Sink(Protocol):
    def on_head(
        self,
        method: bytes,
        target: bytes,
        version: str,
        headers: list[tuple[bytes, bytes]],
        framing: Framing,
    ) -> None: ...

    def on_body(self, data: bytes) -> None: ...

    def on_message_complete(self) -> None: ...

    def on_upgrade(self, rest: bytes) -> None: ...
