"""The ASGI lifespan protocol: startup before the first connection, shutdown after the last.

`--lifespan auto` tolerates apps that do not speak it (an exception before any lifespan message is
"unsupported", logged at info); `on` treats that as a failure. A startup failure is fatal: the
server exits with code 3, so a supervisor stops instead of respawning it in a loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from palfrey.asgi_types import ASGIApp, ASGIVersions, LifespanScope, Message
from palfrey.logging import TRACE_LOG_LEVEL

logger = logging.getLogger("palfrey.error")

_ASGI: ASGIVersions = {"version": "3.0", "spec_version": "2.0"}


class Lifespan:
    def __init__(self, app: ASGIApp, mode: str, state: dict[str, Any]) -> None:
        self.app = app
        self.mode = mode
        self.state = state
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self.startup_event = asyncio.Event()
        self.shutdown_event = asyncio.Event()
        self.startup_failed = False
        self.shutdown_failed = False
        self.unsupported = False
        self.received = False
        self.task: asyncio.Task[None] | None = None

    async def startup(self) -> bool:
        """Run startup; False means the server must not start (the reason is logged)."""
        if self.mode == "off":
            return True
        logger.info("Waiting for application startup.")
        self.task = asyncio.get_running_loop().create_task(self._main())
        await self.queue.put({"type": "lifespan.startup"})
        await self.startup_event.wait()
        if self.startup_failed or (self.unsupported and self.mode == "on"):
            logger.error("Application startup failed. Exiting.")
            return False
        if not self.unsupported:
            logger.info("Application startup complete.")
        return True

    async def shutdown(self) -> None:
        if self.mode == "off" or self.unsupported or self.task is None or self.task.done():
            return
        logger.info("Waiting for application shutdown.")
        await self.queue.put({"type": "lifespan.shutdown"})
        await self.shutdown_event.wait()
        if self.shutdown_failed:
            logger.error("Application shutdown failed.")
        else:
            logger.info("Application shutdown complete.")

    async def _main(self) -> None:
        scope: LifespanScope = {"type": "lifespan", "asgi": _ASGI, "state": self.state}
        try:
            await self.app(dict(scope), self._receive, self._send)
        except asyncio.CancelledError:
            raise  # a forced exit skips lifespan shutdown and cancels the app: nothing went wrong
        except BaseException as exc:
            if not self.received and self.mode == "auto":
                # It raised before even reading the first lifespan message: it does not speak it.
                self.unsupported = True
                # uvicorn says "ASGI 'lifespan' protocol appears unsupported.", which reads like a
                # fault to a newcomer whose hello-world app simply has no startup/shutdown hooks.
                logger.info(
                    "No lifespan support in the app (%s on the lifespan scope): serving without "
                    "startup/shutdown hooks, which is fine for an app that has none (--lifespan off "
                    "skips this check).",
                    type(exc).__name__,
                )
                logger.debug("The app's answer to the lifespan scope", exc_info=exc)
            elif not self.startup_event.is_set():
                logger.error("Exception in 'lifespan' protocol\n", exc_info=exc)
                self.startup_failed = True
            elif not self.shutdown_event.is_set() and not self.startup_failed:
                logger.error("Exception in 'lifespan' protocol\n", exc_info=exc)
                self.shutdown_failed = True
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            self.startup_event.set()
            self.shutdown_event.set()

    async def _receive(self) -> Message:
        self.received = True
        message = await self.queue.get()
        logger.log(TRACE_LOG_LEVEL, "ASGI [lifespan] Receive %s", message["type"])
        return message

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        logger.log(TRACE_LOG_LEVEL, "ASGI [lifespan] Send %s", kind)
        if kind == "lifespan.startup.complete":
            self.startup_event.set()
        elif kind == "lifespan.startup.failed":
            self.startup_failed = True
            self.startup_event.set()
            if message.get("message"):
                logger.error(message["message"])
        elif kind == "lifespan.shutdown.complete":
            self.shutdown_event.set()
        elif kind == "lifespan.shutdown.failed":
            self.shutdown_failed = True
            self.shutdown_event.set()
            if message.get("message"):
                logger.error(message["message"])
        else:
            raise RuntimeError(f"Unexpected ASGI lifespan message {kind!r}")
