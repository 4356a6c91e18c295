"""A Starlette app serving a file with `FileResponse` (which sends `http.response.pathsend` when the
scope advertises it): /file?p=PATH."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Route


async def serve_file(request: Request) -> FileResponse:
    return FileResponse(request.query_params["p"])


app = Starlette(routes=[Route("/file", serve_file)])
