"""A small broadcast chat room in plain ASGI: `palfrey docs_src.websockets.chat:app`.

Open `ws://127.0.0.1:8000/chat?name=ann` from several clients: whatever one member sends reaches
every member as "ann: text", and everyone sees who joins and leaves. The room lives in one process:
run one worker (several workers would each have a room of their own).

A slow member must not slow the room down or make it buffer without bound: each member has a
bounded outbox sent by its own task, and a member whose outbox is full is closed with 1008.
"""

import asyncio
from urllib.parse import parse_qs

OUTBOX = 64  # messages that may wait for one member


class Member:
    def __init__(self, name, send):
        self.name = name
        self.send = send
        self.outbox = asyncio.Queue(OUTBOX)
        self.pump = asyncio.create_task(self.deliver_all())
        self.kicked = None

    async def deliver_all(self):
        try:
            while True:
                text = await self.outbox.get()
                await self.send({"type": "websocket.send", "text": text})
        except OSError:
            pass  # the client left; its receive loop sees the disconnect

    def deliver(self, text):
        try:
            self.outbox.put_nowait(text)
            return True
        except asyncio.QueueFull:
            return False


room = {}


def broadcast(text):
    for member in list(room.values()):
        if not member.deliver(text):  # too slow: it leaves the room
            del room[member.name]
            member.pump.cancel()
            close = {"type": "websocket.close", "code": 1008, "reason": "too slow"}
            member.kicked = asyncio.ensure_future(member.send(close))


async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"Not Found"})
        return
    if scope["type"] != "websocket":
        return  # lifespan: nothing to set up
    await receive()  # websocket.connect
    name = parse_qs(scope["query_string"].decode()).get("name", [""])[0]
    if scope["path"] != "/chat" or not name or name in room:
        await send({"type": "websocket.close"})  # before accepting: the client gets HTTP 403
        return
    await send({"type": "websocket.accept"})
    member = room[name] = Member(name, send)
    broadcast(f"* {name} joined")
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("text"):
                broadcast(f"{name}: {message['text']}")
    finally:
        member.pump.cancel()
        if room.get(name) is member:
            del room[name]
            broadcast(f"* {name} left")
