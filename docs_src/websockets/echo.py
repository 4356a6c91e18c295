"""A WebSocket echo endpoint in plain ASGI: `palfrey docs_src.websockets.echo:app`.

Connect with any WebSocket client, e.g. `python -m websockets ws://127.0.0.1:8000/`: every message
comes back as it was sent, text as text and bytes as bytes. A plain HTTP GET gets a short hint.
"""


async def app(scope, receive, send):
    if scope["type"] == "http":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"Connect with a WebSocket client.\n"})
        return
    if scope["type"] != "websocket":
        return  # lifespan: nothing to set up
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
