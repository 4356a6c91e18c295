"""Minimal production-like settings: DEBUG off, no middleware, no sessions, one SQLite database."""

from __future__ import annotations

from pathlib import Path

from seedsite.db import ensure_database

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "benchmark-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["seedsite"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "seedsite.urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(ensure_database()),
        "CONN_MAX_AGE": None,
        "OPTIONS": {"timeout": 30},
    }
}
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {
            "loaders": [
                ("django.template.loaders.cached.Loader", ["django.template.loaders.filesystem.Loader"])
            ]
        },
    }
]
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
