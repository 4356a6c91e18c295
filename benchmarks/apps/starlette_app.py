"""A small Starlette app: the "realistic" ASGI row, where routing and response classes cost time too."""

from __future__ import annotations

from asgi import JSON_PAYLOAD
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route


async def plaintext(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, world!")


async def json_view(request: Request) -> JSONResponse:
    return JSONResponse(JSON_PAYLOAD)


async def user(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["user_id"], "query": dict(request.query_params)})


app = Starlette(
    routes=[
        Route("/plaintext", plaintext),
        Route("/json", json_view),
        Route("/users/{user_id:int}", user),
    ]
)
