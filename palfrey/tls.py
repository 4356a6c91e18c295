"""TLS: the server-side SSL context built from the --ssl-* settings."""

from __future__ import annotations

import os
import ssl

from palfrey.config import Config, ConfigError


def create_ssl_context(config: Config) -> ssl.SSLContext:
    """Load the certificate chain and client-verification settings; errors become one line."""
    for flag, path in (
        ("--ssl-certfile", config.ssl_certfile),
        ("--ssl-keyfile", config.ssl_keyfile),
        ("--ssl-ca-certs", config.ssl_ca_certs),
    ):
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"TLS setup failed: {flag}: no such file: {path}")
    certfile = config.ssl_certfile
    if certfile is None:  # callers only build a context for a certificate; say so rather than crash
        raise ConfigError("TLS setup failed: --ssl-certfile is required")
    try:
        context = ssl.SSLContext(config.ssl_version)
        password = config.ssl_keyfile_password
        try:
            context.load_cert_chain(
                certfile,
                config.ssl_keyfile,
                password=(lambda: password) if password is not None else None,
            )
        except ssl.SSLError as exc:
            raise ConfigError(
                f"TLS setup failed: cannot load certificate {config.ssl_certfile} with key "
                f"{config.ssl_keyfile}: {exc}"
            ) from None
        context.verify_mode = ssl.VerifyMode(config.ssl_cert_reqs)
        if config.ssl_ca_certs:
            context.load_verify_locations(config.ssl_ca_certs)
        if config.ssl_ciphers:
            context.set_ciphers(config.ssl_ciphers)
        if config.http2:
            context.set_alpn_protocols(["h2", "http/1.1"])  # HTTP/2 when the client offers it
    except ConfigError:
        raise
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"TLS setup failed: {exc}") from None
    return context
