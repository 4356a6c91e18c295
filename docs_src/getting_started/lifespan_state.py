"""Lifespan state: what startup puts in `scope["state"]` every request sees (a shallow copy each).

`palfrey docs_src.getting_started.lifespan_state:app`.
"""

import json
import time


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["started_at"] = time.time()
                scope["state"]["greeting"] = "hello from startup"
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    state = scope["state"]
    body = json.dumps({"greeting": state["greeting"], "uptime": time.time() - state["started_at"]})
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})
