from __future__ import annotations

from django.urls import path

from seedsite import views

urlpatterns = [
    path("json", views.json_view),
    path("db", views.db_view),
    path("template", views.template_view),
    path("slow", views.slow_view),
]
