"""Loading the user's app from "module:attribute" and deciding which interface it speaks.

The errors distinguish what the operator must fix: a module that does not exist (a typo or a wrong
--app-dir) is one line; an ImportError raised *inside* the user's module is the user's bug and keeps
its traceback.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import sys
from collections.abc import Callable
from typing import Any

from palfrey.errors import AppLoadError

__all__ = ["AppLoadError", "detect_interface", "import_from_string", "load_app", "log_app_load_error"]


def log_app_load_error(logger: logging.Logger, exc: AppLoadError) -> None:
    """Log why the app did not load: one line for the operator's mistakes, the traceback for the
    user's own code (the exception that code raised, not palfrey's wrapper)."""
    if exc.show_traceback and exc.__cause__ is not None:
        logger.error("%s", exc, exc_info=exc.__cause__)
    else:
        logger.error("%s", exc)


def import_from_string(import_str: str) -> Any:
    """Import "package.module:attr.sub" and return the attribute."""
    module_str, _, attrs_str = import_str.partition(":")
    if not module_str or not attrs_str:
        raise AppLoadError(f'Import string "{import_str}" must be in format "<module>:<attribute>".')
    try:
        module = importlib.import_module(module_str)
    except ModuleNotFoundError as exc:
        # Only "module not found" when the missing module is the one asked for (or a parent);
        # a missing dependency imported by the user's module is the user's ImportError.
        missing = exc.name or ""
        if missing and (module_str == missing or module_str.startswith(missing + ".")):
            raise AppLoadError(f'Could not import module "{module_str}".') from None
        raise AppLoadError(
            f'Error while importing module "{module_str}": {exc}', show_traceback=True
        ) from exc
    except Exception as exc:
        raise AppLoadError(
            f'Error while importing module "{module_str}": {type(exc).__name__}: {exc}',
            show_traceback=True,
        ) from exc
    instance: Any = module
    try:
        for attr in attrs_str.split("."):
            instance = getattr(instance, attr)
    except AttributeError:
        raise AppLoadError(f'Attribute "{attrs_str}" not found in module "{module_str}".') from None
    return instance


def load_app(app: str | Callable[..., Any], *, app_dir: str, factory: bool) -> Callable[..., Any]:
    """Resolve the configured app to a callable (calling the factory when asked)."""
    if app_dir:
        sys.path.insert(0, app_dir)
    elif "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    loaded = import_from_string(app) if isinstance(app, str) else app
    if factory:
        if not callable(loaded):
            raise AppLoadError("--factory was given but the app is not callable.")
        try:
            loaded = loaded()
        except TypeError as exc:
            raise AppLoadError(f"Error calling the app factory: {exc}", show_traceback=True) from exc
        except Exception as exc:
            raise AppLoadError(
                f"Error calling the app factory: {type(exc).__name__}: {exc}", show_traceback=True
            ) from exc
    if not callable(loaded):
        raise AppLoadError(f"The app {app!r} is not callable (got {type(loaded).__name__}).")
    return loaded


def detect_interface(app: Callable[..., Any]) -> str:
    """asgi3 for `async def app(scope, receive, send)`, asgi2 for `app(scope) -> coroutine fn`,
    wsgi for a plain `app(environ, start_response)`."""
    if inspect.isclass(app):
        call = getattr(app, "__await__", None)
        return "asgi3" if call is not None else "asgi2"
    target = app
    if not (inspect.isfunction(app) or inspect.ismethod(app)):
        target = getattr(app, "__call__", app)  # noqa: B004 - instances with an async __call__
    if asyncio.iscoroutinefunction(target) or inspect.iscoroutinefunction(target):
        return "asgi3"
    try:
        params = [
            p
            for p in inspect.signature(app).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return "asgi3"
    if len(params) == 1:
        return "asgi2"
    if len(params) == 2:
        return "wsgi"
    return "asgi3"
