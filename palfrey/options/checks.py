"""Validation and normalisation of option values beyond their kind; each raises ValueError."""

from __future__ import annotations

from typing import Any


def header(value: Any) -> str:
    """A "name:value" string, or uvicorn's Python form, a (name, value) pair (stored as "name:value")."""
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, str) for v in value):
        name, header_value = value
        if not name.strip() or ":" in name:
            raise ValueError(f"header {value!r} has no valid name")
        return f"{name.strip()}:{header_value}"
    if not isinstance(value, str):
        raise ValueError(f"header {value!r} is not a 'name:value' string or a (name, value) pair")
    name, sep, _ = value.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"header {value!r} is not of the form 'name:value'")
    return value


def check_headers(values: Any) -> list[str]:
    return [header(v) for v in values]


def access_log_format(value: str | None) -> str | None:
    if value is not None:
        from palfrey.logging import compile_access_format

        compile_access_format(value)  # ValueError with a clear message when the format is bad
    return value


def ssl_version(value: Any) -> int:
    return int(value)


def workers(value: str) -> int:
    """A count, or "auto": the CPUs this process may use (affinity and cgroup quota respected)."""
    text = value.strip().lower()
    if text == "auto":
        from palfrey.supervisor.process import usable_cpus

        return usable_cpus()
    try:
        count = int(text)
    except ValueError:
        raise ValueError(f"expects a number of workers or 'auto', got {value!r}") from None
    if count < 1:
        raise ValueError(f"must be at least 1; got {count}")
    return count


def threads(value: str) -> int:
    """A fixed pool size, or "auto" (0): the adaptive pool."""
    text = value.strip().lower()
    if text == "auto":
        return 0
    try:
        count = int(text)
    except ValueError:
        raise ValueError(f"expects a number of threads or 'auto', got {value!r}") from None
    if count < 0:
        raise ValueError(f"must be at least 1 (or 'auto', also spelled 0); got {count}")
    return count


def metrics(value: bool) -> bool:
    """--metrics needs the optional prometheus_client (palfrey[metrics]): say so at startup, in one line."""
    if value:
        from palfrey.metrics import MISSING_CLIENT, client_available

        if not client_available():
            raise ValueError(MISSING_CLIENT)
    return value


def metrics_bind(value: str) -> str:
    from palfrey.addresses import parse_bind

    parse_bind(value)  # ValueError with a one-line message
    return value.strip()


def ws_engine(value: str) -> str:
    """An explicitly chosen WebSocket implementation must be installed (auto falls back quietly)."""
    if value == "websockets-sansio":
        value = "websockets"  # uvicorn's name for its sans-I/O websockets engine: the one palfrey uses
    if value in ("websockets", "wsproto"):
        from importlib.util import find_spec

        if find_spec(value) is None:
            raise ValueError(f"{value} is not installed: pip install {value}")
    return value


def window_bits(value: int) -> int:
    if not 9 <= value <= 15:
        raise ValueError(f"must be between 9 and 15; got {value}")
    return value
