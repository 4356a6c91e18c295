"""The seed table's views, on one Django project.

The seed benchmark runs the same pages on every server. Pages that wait (a gateway, an upstream
call) are written the way each interface is meant to be used: under WSGI (palfrey --interface wsgi,
gunicorn, granian) as plain sync views that block their thread or greenlet; under ASGI as async
views (`asyncio.sleep`, `httpx.AsyncClient`), since Django runs every sync view of an ASGI app on
one shared thread. `requests` has no async API: under ASGI its view runs through
`sync_to_async(thread_sensitive=False)`, on asgiref's thread pool, as an ASGI project calling
`requests` would. `urls.py` picks the set from $SEED_INTERFACE, which `asgi.py`/`wsgi.py` set.

The upstream is a small server the harness starts on loopback ($BENCH_UPSTREAM, see
benchmarks/bench/upstream.py); it answers after `UPSTREAM_DELAY` seconds, like a fast remote API.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from typing import Any

import brotli
import httpx
import requests
from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from seedsite.models import Item

UPSTREAM_DELAY = 0.1
_local = threading.local()  # one requests.Session / httpx.Client per thread (or greenlet under gevent)
_async_clients: dict[int, httpx.AsyncClient] = {}  # one per event loop
# _PLAIN_HTTP: the upstream is plain HTTP on loopback, so the httpx clients skip building a verifying
# SSL context: with it, each httpx.Client() loads certifi's CA bundle (~120 ms of CPU measured on
# the loaded bench machine), and 1,000 threads each making one spent minutes of CPU on nothing.


def upstream_url() -> str:
    return os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:8999") + f"/?delay={UPSTREAM_DELAY}"


def json_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"message": "Hello, world!", "items": [1, 2, 3], "ok": True})


def db_view(request: HttpRequest) -> JsonResponse:
    items = list(Item.objects.filter(id__lte=10).order_by("id").values("id", "name", "price", "stock"))
    return JsonResponse({"items": items})


def template_view(request: HttpRequest) -> HttpResponse:
    rows = Item.objects.order_by("id")[:20]
    return render(request, "page.html", {"title": "Seed table", "rows": rows})


def brotli_view(request: HttpRequest) -> HttpResponse:
    """An 11.5 KiB JSON list (0.7 KiB compressed) compressed per request (quality 5, a common middleware setting), when
    the client accepts br; the body stays the same for clients that do not."""
    items = list(Item.objects.order_by("id").values("id", "name", "price", "stock"))
    body = json.dumps({"items": items * 2}).encode()
    if "br" not in request.headers.get("Accept-Encoding", ""):
        return HttpResponse(body, content_type="application/json")
    response = HttpResponse(brotli.compress(body, quality=5), content_type="application/json")
    response["Content-Encoding"] = "br"
    response["Vary"] = "Accept-Encoding"
    return response


def gateway_view(request: HttpRequest, seconds: int) -> JsonResponse:
    """A view waiting on a slow gateway: the thread (greenlet under gevent) blocks for `seconds`."""
    time.sleep(seconds)
    return JsonResponse({"gateway": "done", "waited": seconds})


async def gateway_view_async(request: HttpRequest, seconds: int) -> JsonResponse:
    await asyncio.sleep(seconds)
    return JsonResponse({"gateway": "done", "waited": seconds})


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def _fetch_requests() -> Any:
    response = _session().get(upstream_url(), timeout=10)
    response.raise_for_status()
    return response.json()


def requests_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"via": "requests", "upstream": _fetch_requests()})


async def requests_view_async(request: HttpRequest) -> JsonResponse:
    data = await sync_to_async(_fetch_requests, thread_sensitive=False)()
    return JsonResponse({"via": "requests", "upstream": data})


def httpx_view(request: HttpRequest) -> JsonResponse:
    client = getattr(_local, "httpx", None)
    if client is None:
        client = _local.httpx = httpx.Client(timeout=10, verify=False)  # see _PLAIN_HTTP
    response = client.get(upstream_url())
    response.raise_for_status()
    return JsonResponse({"via": "httpx", "upstream": response.json()})


async def httpx_view_async(request: HttpRequest) -> JsonResponse:
    loop_id = id(asyncio.get_running_loop())
    client = _async_clients.get(loop_id)
    if client is None:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=1000)
        client = _async_clients[loop_id] = httpx.AsyncClient(timeout=10, limits=limits, verify=False)
    response = await client.get(upstream_url())
    response.raise_for_status()
    return JsonResponse({"via": "httpx", "upstream": response.json()})
