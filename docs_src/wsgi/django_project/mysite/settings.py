"""Settings for the example project: no database, templates from ../templates."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "docs-example-only-use-a-real-secret-in-production"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS: list[str] = []
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
    }
]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
# Uploaded files above this size go to a temporary file instead of memory (Django's default, 2.5 MB).
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
