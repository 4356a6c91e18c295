"""The four seed-table views.

`slow` is async so the same view waits without holding a thread under ASGI; under WSGI Django
runs it through async_to_sync, which blocks the request's thread for the second, as a sync view
calling a slow upstream would. The others are ordinary sync views, as most Django code is.
"""

from __future__ import annotations

import asyncio

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from seedsite.models import Item

SLOW_SECONDS = 1.0
_ROWS = [{"id": i, "name": f"row-{i}", "value": i * 3} for i in range(20)]


def json_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"message": "Hello, world!", "items": [1, 2, 3], "ok": True})


def db_view(request: HttpRequest) -> JsonResponse:
    items = list(Item.objects.filter(id__lte=10).order_by("id").values("id", "name", "price", "stock"))
    return JsonResponse({"items": items})


def template_view(request: HttpRequest) -> HttpResponse:
    return render(request, "page.html", {"title": "Seed table", "rows": _ROWS})


async def slow_view(request: HttpRequest) -> JsonResponse:
    await asyncio.sleep(SLOW_SECONDS)
    return JsonResponse({"upstream": "done", "waited": SLOW_SECONDS})
