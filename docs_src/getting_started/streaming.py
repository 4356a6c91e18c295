"""A streaming response: no Content-Length, so palfrey sends it chunked.

`palfrey docs_src.getting_started.streaming:app`, then `curl -N http://127.0.0.1:8000/`.
"""

import asyncio


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    for number in range(1, 6):
        await send({"type": "http.response.body", "body": f"tick {number}\n".encode(), "more_body": True})
        await asyncio.sleep(0.05)
    await send({"type": "http.response.body", "body": b"done\n"})
