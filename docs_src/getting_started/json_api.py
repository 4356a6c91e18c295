"""A tiny JSON API without a framework: `palfrey docs_src.getting_started.json_api:app`.

GET /items lists items; POST /items with a JSON body adds one and answers 201.
"""

import json

ITEMS: list[dict] = [{"id": 1, "name": "hay"}]


async def read_body(receive) -> bytes:
    body = b""
    more_body = True
    while more_body:
        message = await receive()
        body += message.get("body", b"")
        more_body = message.get("more_body", False)
    return body


async def respond(send, status: int, payload) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] != "/items":
        await respond(send, 404, {"error": "not found"})
    elif scope["method"] == "GET":
        await respond(send, 200, ITEMS)
    elif scope["method"] == "POST":
        try:
            item = json.loads(await read_body(receive))
        except ValueError:
            await respond(send, 400, {"error": "invalid JSON"})
            return
        item["id"] = len(ITEMS) + 1
        ITEMS.append(item)
        await respond(send, 201, item)
    else:
        await respond(send, 405, {"error": "method not allowed"})
