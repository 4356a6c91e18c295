"""The seed table's pages. Waiting pages use sync views under WSGI and async views under ASGI
($SEED_INTERFACE, set by wsgi.py / asgi.py; see views.py for why)."""

from __future__ import annotations

import os

from django.urls import path

from seedsite import views

ASYNC = os.environ.get("SEED_INTERFACE") == "asgi"

urlpatterns = [
    path("json", views.json_view),
    path("db", views.db_view),
    path("template", views.template_view),
    path("brotli", views.brotli_view),
    path("gateway/<int:seconds>", views.gateway_view_async if ASYNC else views.gateway_view),
    path("requests", views.requests_view_async if ASYNC else views.requests_view),
    path("httpx", views.httpx_view_async if ASYNC else views.httpx_view),
]
