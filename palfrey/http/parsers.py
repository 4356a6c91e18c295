"""The two parser adapters: httptools (llhttp, fast, `httptools_parser.py`) and h11 (pure Python,
`h11_parser.py`), over what they share (`parser_base.py`: `Limits`, `Sink`).

Each turns bytes into the same three calls on its sink (the connection protocol):
`on_head(method, target, version, headers, framing)`, `on_body(data)`, `on_message_complete()`,
and raises `ParseError` for anything it will not pass on. Limits hold however the bytes arrive.
"""

from __future__ import annotations

from palfrey.http.h11_parser import H11Parser
from palfrey.http.httptools_parser import HttptoolsParser
from palfrey.http.parser_base import DEFAULT_HEAD_LIMIT, Limits, Sink

__all__ = ["DEFAULT_HEAD_LIMIT", "H11Parser", "HttptoolsParser", "Limits", "Sink"]
