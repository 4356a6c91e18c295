"""Helpers behind `palfrey.workers`: gunicorn settings → palfrey `Config`, gunicorn's access logger,
gunicorn's `secure_scheme_headers`. Imported only by the worker classes, so gunicorn stays optional."""
