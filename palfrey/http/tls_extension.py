"""The ASGI `tls` extension: what the TLS layer of a connection says, in `scope["extensions"]["tls"]`.

WebSocket scopes (wss) get the same values under the same key. Only connections over TLS use
`TlsHttpProtocol`, a subclass chosen once by the server when it has an SSL context, so a plain-TCP
request pays nothing for it. The values are read once per connection
(at the handshake, which is over when `connection_made` runs) and shared by its requests:

- `server_cert`: the server's certificate chain as PEM text, read once per process from
  --ssl-certfile (the spec's field is a single string holding the chain);
- `client_cert_chain`: the client's certificate as PEM in a list (Python's `ssl` exposes only the
  leaf before 3.13), empty when the client sent none; `client_cert_name`: its subject as an
  RFC 4514 string, when the certificate was verified (`--ssl-cert-reqs`); `client_cert_error`: None;
- `tls_version`: the protocol version number (0x0304 for TLS 1.3); `cipher_suite`: the IANA number
  of the negotiated suite (found through the context's `get_ciphers()`, whose ids carry it).
"""

from __future__ import annotations

import ssl
from typing import Any

from palfrey.http.head import Framing
from palfrey.http.pathsend import EXTENSIONS
from palfrey.http.protocol import HttpProtocol

_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
_END = "-----END CERTIFICATE-----"


def server_chain(certfile: str | None) -> str | None:
    """The certificates of --ssl-certfile as one PEM string (the key, if in the same file, left out)."""
    if not certfile:
        return None
    try:
        with open(certfile, encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    blocks = []
    for part in text.split(_END)[:-1]:
        start = part.find("-----BEGIN CERTIFICATE-----")
        if start != -1:
            blocks.append(part[start:] + _END + "\n")
    return "".join(blocks) or None


def cipher_ids(context: ssl.SSLContext) -> dict[str, int]:
    """Cipher suite name -> IANA number (OpenSSL's id is 0x0300XXXX for TLS suites)."""
    return {cipher["name"]: cipher["id"] & 0xFFFF for cipher in context.get_ciphers()}


def _rfc4514(subject: Any) -> str | None:
    if not subject:
        return None
    parts = [f"{name}={value}" for rdn in reversed(subject) for name, value in rdn]
    return ",".join(parts) or None


def connection_tls(ssl_object: Any, server_cert: str | None, ciphers: dict[str, int]) -> dict[str, Any]:
    """The `tls` extension's values for one connection."""
    der = ssl_object.getpeercert(binary_form=True)
    client_chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    cipher = ssl_object.cipher()
    return {
        "server_cert": server_cert,
        "client_cert_chain": client_chain,
        "client_cert_name": _rfc4514((ssl_object.getpeercert() or {}).get("subject")) if der else None,
        "client_cert_error": None,
        "tls_version": _VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": ciphers.get(cipher[0]) if cipher else None,
    }


def tls_protocol(
    base: type[HttpProtocol], certfile: str | None, context: ssl.SSLContext
) -> type[HttpProtocol]:
    """The protocol class for this process's TLS listeners (chain and cipher table read once)."""
    server_cert = server_chain(certfile)
    ciphers = cipher_ids(context)

    class TlsHttpProtocol(base):  # type: ignore[valid-type,misc]
        """HttpProtocol that adds the `tls` extension to every request scope of its connection."""

        # `{"tls": values}` of this connection (an HTTP/2 connection taking it over reads it too).
        tls: dict[str, Any] | None = None
        extensions: dict[str, Any] = EXTENSIONS  # what its HTTP/1.1 scopes advertise, `tls` included

        def connection_made(self, transport: Any) -> None:
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None:
                self.tls = {"tls": connection_tls(ssl_object, server_cert, ciphers)}
                # One dict per connection, shared by its requests; never the process-wide one.
                self.extensions = {**EXTENSIONS, **self.tls}
            super().connection_made(transport)

        def on_head(
            self,
            method: bytes,
            target: bytes,
            version: str,
            headers: list[tuple[bytes, bytes]],
            framing: Framing,
        ) -> None:
            super().on_head(method, target, version, headers, framing)
            # The app's task was only created: it reads the scope once it runs, after this.
            if self.tls is None:
                return
            cycle = self.parsing
            if cycle is not None:
                cycle.scope["extensions"] = self.extensions
            elif self.upgrade is not None:  # a WebSocket handshake (wss): its scope gets `tls` too
                self.upgrade.cycle.scope["extensions"].update(self.tls)

    return TlsHttpProtocol
