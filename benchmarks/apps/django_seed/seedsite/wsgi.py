from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "seedsite.settings")
os.environ["SEED_INTERFACE"] = "wsgi"  # urls.py: sync views for the waiting pages
application = get_wsgi_application()
