"""The app the deployment recipes serve (`docs_src.deploy.app:app`): it says who answered whom.

    palfrey docs_src.deploy.app:app --workers 2 --health-bind 127.0.0.1:8081 --shutdown-delay 5

`GET /` answers JSON with the worker's pid, the client address and the scheme the app sees (after
`--proxy-headers` and `--forwarded-allow-ips`), so a balancer's spread and its proxy headers can be
checked from outside. `POST /` reads the whole body and reports its length: a request that was cut
or replayed shows up as a wrong length. `?delay=SECONDS` answers that much later, so that requests
are in flight when a master is restarted.
"""

import asyncio
import json
import os
from urllib.parse import parse_qs


async def app(scope, receive, send):
    if scope["type"] != "http":
        return  # lifespan: nothing to set up
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    delay = parse_qs(scope["query_string"].decode()).get("delay")
    if delay:
        await asyncio.sleep(float(delay[0]))
    client = scope.get("client")
    body = json.dumps(
        {
            "pid": os.getpid(),
            "method": scope["method"],
            "client": client[0] if client else None,
            "scheme": scope["scheme"],
            "received": received,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
