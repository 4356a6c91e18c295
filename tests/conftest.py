"""Fixtures shared by every test module, built on tests/support.py.

Test modules never import fixtures or helpers from each other: what more than one module needs lives
here (fixtures) or in tests/support.py (plain helpers and the raw clients).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import trustme

from tests.support import HTTP_APP, PARSERS, ServerFactory, ServerProcess, run_server


@pytest.fixture
def serve() -> Iterator[ServerFactory]:
    """The server-process factory: `serve(*palfrey_args, env=None, timeout=15.0, cwd=None)` starts
    `python -m palfrey` (127.0.0.1, a free port unless the args say otherwise), waits until it is
    running and returns it; every process started is stopped (TERM, then KILL) after the test."""
    with ExitStack() as stack:

        def start(
            *args: str,
            env: dict[str, str] | None = None,
            timeout: float = 15.0,
            cwd: str | Path | None = None,
        ) -> ServerProcess:
            return stack.enter_context(run_server(*args, env=env, timeout=timeout, cwd=cwd))

        yield start


@pytest.fixture(scope="module", params=PARSERS)
def http_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """One palfrey per parser serving tests/apps/http_apps.py with two `--header`s, for a module's
    tests (each module that uses it gets its own processes)."""
    with run_server(
        HTTP_APP, "--http", request.param, "--workers", "1", "--header", "X-A:b", "--header", "x-b: c d"
    ) as process:
        process.parser = request.param  # type: ignore[attr-defined]
        yield process


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1 and localhost: (ca, cert chain file, key file).
    Clients trust it with `ca.configure_trust(ssl_context)`."""
    directory = tmp_path_factory.mktemp("tls-certs")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert_file))
    for extra in leaf.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_file), append=True)
    leaf.private_key_pem.write_to_path(str(key_file))
    return ca, cert_file, key_file
