"""ServerState is read on every request: keep its instance dict inside CPython's shared-key limit.

CPython 3.11 shares the keys of instance dicts ("split tables") only while a class's instances have at
most 30 attributes; a 31st switched ServerState to a combined table and cost ~400 instructions per
request on the plaintext path (measured with benchmarks/hotpath.py). New per-process values belong in
one of the grouped sub-objects (`limits`, `slow`, ...), not in a new top-level attribute.
"""

from __future__ import annotations

import asyncio

from palfrey.config import Config
from palfrey.server.state import ServerState

MAX_ATTRIBUTES = 30


async def _app(scope: object, receive: object, send: object) -> None:
    return None


def test_server_state_stays_within_the_shared_key_limit() -> None:
    loop = asyncio.new_event_loop()
    try:
        for config in (Config(_app), Config(_app, metrics=True, proxy_headers=True, limit_concurrency=5)):
            state = ServerState(config, _app, loop)
            assert len(vars(state)) <= MAX_ATTRIBUTES, sorted(vars(state))
    finally:
        loop.close()
