"""`HOST:PORT` parsing, shared by the settings table (to check a value) and the listeners that bind it.

A leaf module: the settings table must be able to check an address without importing a socket
server (that import was the `options -> metrics.endpoint -> config -> options` cycle).
"""

from __future__ import annotations


def parse_bind(value: str) -> tuple[str, int]:
    """HOST:PORT, IPv6 in brackets ([::1]:9090); raises ValueError with a one-line message."""
    text = value.strip()
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or not rest.startswith(":") or ":" not in host:
            raise ValueError(f"expects [IPv6]:PORT, got {value!r}")
        port_text = rest[1:]
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon or not host:
            raise ValueError(f"expects HOST:PORT (e.g. 127.0.0.1:9090), got {value!r}")
        if ":" in host:
            raise ValueError(f"an IPv6 address needs brackets, e.g. [::1]:9090; got {value!r}")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"expects a port number from 0 to 65535, got {value!r}")
    return host, int(port_text)
