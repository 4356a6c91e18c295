"""A WSGI app that logs a traceback the way Flask does: a `logging.StreamHandler` on `wsgi.errors`
(one write of the whole multi-line record, then a flush), and one that writes lines without flushing."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    path = environ["PATH_INFO"]
    errors = environ["wsgi.errors"]
    try:
        raise ValueError("boom in the view")
    except ValueError:
        if path == "/flask-style":
            handler = logging.StreamHandler(errors)
            logger = logging.getLogger("dropin.view")
            logger.addHandler(handler)
            logger.propagate = False
            try:
                logger.exception("Exception on %s [GET]", path)
            finally:
                logger.removeHandler(handler)
        else:
            traceback.print_exc(file=errors)  # many writes, no flush: flushed when the request ends
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"logged"]
