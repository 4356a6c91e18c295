"""`palfrey.run()` and the shared path from a Config to a running server."""

from __future__ import annotations

import logging
import sys
from typing import Any

from palfrey.config import AppType, Config
from palfrey.errors import EXIT_CONFIG


def run(app: AppType, **settings: Any) -> None:
    """Serve `app` ("module:attribute" or an app object) with the same settings as the CLI.

    `palfrey.run("main:app", host="0.0.0.0", port=8000)`. Exits the process with a non-zero code
    when the app cannot boot, like the CLI.
    """
    config = Config(app, **settings)
    code = run_config(config)
    if code:
        sys.exit(code)


def run_config(config: Config) -> int:
    """Configure logging, then run the server; returns the exit code."""
    from palfrey.logging import configure_logging
    from palfrey.server.server import Server
    from palfrey.supervisor import uses_master
    from palfrey.supervisor.process import pid_file

    configure_logging(
        log_config=config.log_config,
        log_level=config.log_level,
        access_log=config.access_log,
        use_colors=config.use_colors,
        log_format=config.log_format,
    )
    if config.env_file is not None:
        logging.getLogger("palfrey.error").info("Loaded environment variables from %s", config.env_file)
    if uses_master(config):
        if config.reload and not isinstance(config.app, str):
            logging.getLogger("palfrey.error").error(
                '--reload needs the app as an import string ("module:attribute") so it can re-import it.'
            )
            return EXIT_CONFIG
        from palfrey.supervisor.master import Master

        return Master(config).run()
    with pid_file(config.pid):
        return Server(config).run()
