"""Errors the operator sees and the exit codes they end in: one set for the whole package.

A leaf module (it imports nothing from palfrey), so the settings table, `Config`, the importer, the
server, the master and the CLI can all use it without importing each other.
"""

from __future__ import annotations

# Exit codes of `palfrey` (the CLI), `palfrey.run()`, a single server and the pre-fork master.
EXIT_OK = 0
EXIT_CONFIG = 1  # runtime setup failed: a busy port, a bad log config, a missing optional package
EXIT_BAD_SETTINGS = 2  # a setting has a bad value (click usage errors exit 2 as well)
EXIT_BOOT = 3  # the app could not boot (import error, lifespan startup failed): do not respawn


class ConfigError(ValueError):
    """A setting has a bad value; the message is one line, fit for the user."""


class AppLoadError(Exception):
    """The app could not be loaded. `show_traceback` is True when the user's own code raised."""

    def __init__(self, message: str, *, show_traceback: bool = False) -> None:
        super().__init__(message)
        self.show_traceback = show_traceback
