"""The two per-request hooks a `ServerState` holds, as the shapes the protocols rely on.

Each has two implementations: palfrey's own (`logging.AccessLog`, `middleware.proxy_headers.ProxyHeaders`)
and the Gunicorn worker's (`gunicorn.adapters.GunicornAccessLog`, `SecureSchemeHeaders`), so the
attribute is typed by what is called on it rather than by one class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class AccessLogger(Protocol):
    """What the protocols call once per response: palfrey's AccessLog or gunicorn's adapter."""

    def log(
        self,
        scope: Mapping[str, Any],
        status: int,
        response_headers: Sequence[tuple[bytes, bytes]],
        response_bytes: int,
        duration_ns: int,
    ) -> None: ...


class ProxyRules(Protocol):
    """Rewrites a scope's client/scheme from trusted proxy headers: palfrey's ProxyHeaders, or
    gunicorn's secure_scheme_headers wrapped around them."""

    def apply(self, scope: Any) -> None: ...
