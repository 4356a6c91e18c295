"""The project's WSGI entry point, served by palfrey.

From this directory: `palfrey mysite.wsgi:application`; from the repository root:
`palfrey mysite.wsgi:application --app-dir docs_src/wsgi/django_project`.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = get_wsgi_application()
