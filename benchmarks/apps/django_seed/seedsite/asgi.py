from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "seedsite.settings")
os.environ["SEED_INTERFACE"] = "asgi"  # urls.py: async views for the waiting pages
application = get_asgi_application()
