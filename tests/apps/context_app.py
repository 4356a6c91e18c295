"""An app that reports what a context variable held when its request started, then sets it."""

import contextvars

request_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_var", default="unset")
request_var.set("set-at-import")  # before the server starts: part of the server's base context


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    seen = request_var.get()
    request_var.set(f"request {scope['path']}")
    body = seen.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
