"""Logging for palfrey: uvicorn-style console output and gunicorn-style access log atoms.

Three loggers matter: ``palfrey`` (parent), ``palfrey.error`` (server messages) and ``palfrey.access``
(one line per request); a ``--log-config`` written for uvicorn's ``uvicorn.*`` names is applied to
them (see :func:`configure_logging`). The package is split by job: ``levels`` (TRACE), ``formatters``
(console output), ``json_format`` (``--log-format json``), ``access`` (the access log and its atoms)
and ``config`` (``LOGGING_CONFIG``, ``--log-config``, ``--log-level``). Everything public is importable from ``palfrey.logging``, which is
also what configs name (``palfrey.logging.DefaultFormatter``).
"""

from __future__ import annotations

from palfrey.logging.access import (
    DEFAULT_ACCESS_MESSAGE,
    AccessAtoms,
    AccessLog,
    compile_access_format,
    format_client_addr,
    format_target,
)
from palfrey.logging.config import (
    JSON_LOGGING_CONFIG,
    LOG_FORMATS,
    LOGGING_CONFIG,
    PALFREY_LOGGERS,
    LogConfigError,
    configure_logging,
)
from palfrey.logging.formatters import AccessFormatter, DefaultFormatter
from palfrey.logging.json_format import JsonFormatter
from palfrey.logging.levels import LOG_LEVELS, TRACE_LOG_LEVEL

__all__ = [
    "DEFAULT_ACCESS_MESSAGE",
    "JSON_LOGGING_CONFIG",
    "LOG_FORMATS",
    "LOGGING_CONFIG",
    "LOG_LEVELS",
    "PALFREY_LOGGERS",
    "TRACE_LOG_LEVEL",
    "AccessAtoms",
    "AccessFormatter",
    "AccessLog",
    "DefaultFormatter",
    "JsonFormatter",
    "LogConfigError",
    "compile_access_format",
    "configure_logging",
    "format_client_addr",
    "format_target",
]
