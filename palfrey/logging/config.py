"""Logging configuration: the default dict (:data:`LOGGING_CONFIG`), ``--log-config`` files
(.json/.yaml/.ini), ``--log-level`` and ``--no-access-log``, each failure as one clear line."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import re
from typing import Any

from palfrey.logging.formatters import AccessFormatter, DefaultFormatter
from palfrey.logging.levels import LOG_LEVELS

#: Loggers whose level ``--log-level`` sets.
PALFREY_LOGGERS: tuple[str, ...] = ("palfrey", "palfrey.error", "palfrey.access")

#: The default configuration; copied before use so callers may build on it safely.
LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {
            "()": "palfrey.logging.DefaultFormatter",
            "fmt": "%(levelprefix)s %(message)s",
            "use_colors": None,
        },
        "access": {
            "()": "palfrey.logging.AccessFormatter",
            "fmt": "%(levelprefix)s %(message)s",
            "use_colors": None,
        },
    },
    "handlers": {
        "default": {"formatter": "default", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
        "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
    },
    "loggers": {
        "palfrey": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "palfrey.error": {"level": "INFO"},
        "palfrey.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}


#: `--log-format json`: the same loggers and streams, one JSON object per line; the root logger too
#: (at WARNING, the level Python's last-resort handler shows), so an app's own records and asyncio's
#: ("Task exception was never retrieved") do not put plain-text lines into a JSON stream.
JSON_LOGGING_CONFIG: dict[str, Any] = {
    **LOGGING_CONFIG,
    "formatters": {
        "default": {"()": "palfrey.logging.JsonFormatter"},
        "access": {"()": "palfrey.logging.JsonFormatter"},
    },
    "root": {"handlers": ["default"], "level": "WARNING"},
}

#: The values `--log-format` accepts.
LOG_FORMATS: tuple[str, ...] = ("text", "json")


class LogConfigError(RuntimeError):
    """Logging could not be configured; the message is one line the CLI can print as-is."""


# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------

_OUR_FORMATTERS = (
    "palfrey.logging.DefaultFormatter",
    "palfrey.logging.AccessFormatter",
    DefaultFormatter,
    AccessFormatter,
)


def _resolve_level(log_level: str | int) -> int:
    if isinstance(log_level, bool):
        raise LogConfigError(f"Invalid log level {log_level!r}.")
    if isinstance(log_level, int):
        return log_level
    name = str(log_level).strip().lower()
    if name in LOG_LEVELS:
        return LOG_LEVELS[name]
    if name.isdigit():
        return int(name)
    raise LogConfigError(f"Invalid log level {log_level!r}; choose from {', '.join(LOG_LEVELS)}.")


def _force_colors(config: dict[str, Any], use_colors: bool | None) -> dict[str, Any]:
    """Let ``--use-colors/--no-use-colors`` win over palfrey formatters declared in a user config.

    ``config`` is already a shallow copy; the formatters mapping is rebuilt rather than mutated.
    """
    formatters = config.get("formatters")
    if use_colors is None or not isinstance(formatters, dict):
        return config
    config["formatters"] = {
        name: {**formatter, "use_colors": use_colors}
        if isinstance(formatter, dict) and formatter.get("()") in _OUR_FORMATTERS
        else formatter
        for name, formatter in formatters.items()
    }
    return config


def _describe(exc: BaseException) -> str:
    """dictConfig hides the real reason in ``__cause__``; fold it into one line."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, KeyError):
        text = f"missing {exc}"
    cause = exc.__cause__
    if cause is not None and str(cause) not in text:
        text = f"{text}: {cause}"
    return " ".join(text.split())


_UVICORN_FORMATTERS = {
    "uvicorn.logging.DefaultFormatter": "palfrey.logging.DefaultFormatter",
    "uvicorn.logging.ColourizedFormatter": "palfrey.logging.DefaultFormatter",
    "uvicorn.logging.AccessFormatter": "palfrey.logging.AccessFormatter",
}
_UVICORN_QUALNAME = re.compile(r"^(\s*qualname\s*=\s*)uvicorn(?=\s*$|\.)", re.MULTILINE | re.IGNORECASE)
_PALFREY_QUALNAME = re.compile(r"^\s*qualname\s*=\s*palfrey(?:\s*$|\.)", re.MULTILINE | re.IGNORECASE)


def _is_uvicorn(name: Any) -> bool:
    return isinstance(name, str) and (name == "uvicorn" or name.startswith("uvicorn."))


def _uvicorn_aliases(config: dict[str, Any], source: str) -> dict[str, Any]:
    """A config written for uvicorn names `uvicorn`, `uvicorn.error`, `uvicorn.access` and uvicorn's
    formatters; a switching user's config must not be silently half-applied. When it names no
    `palfrey*` logger, its `uvicorn*` loggers configure `palfrey*` and its uvicorn formatters become
    palfrey's (which take the same arguments). ``config`` is a shallow copy; nested dicts are rebuilt."""
    loggers = config.get("loggers")
    if not isinstance(loggers, dict) or not any(_is_uvicorn(name) for name in loggers):
        return config
    if any(isinstance(name, str) and (name == "palfrey" or name.startswith("palfrey.")) for name in loggers):
        return config
    config["loggers"] = {
        "palfrey" + name[len("uvicorn") :] if _is_uvicorn(name) else name: value
        for name, value in loggers.items()
    }
    formatters = config.get("formatters")
    if isinstance(formatters, dict):
        config["formatters"] = {
            name: {
                key: _UVICORN_FORMATTERS.get(value, value) if key in ("()", "class") else value
                for key, value in formatter.items()
            }
            if isinstance(formatter, dict)
            else formatter
            for name, formatter in formatters.items()
        }
    _ALIASED.append(source)
    return config


_ALIASED: list[str] = []  # configs applied through uvicorn's names, reported once logging works


def _report_aliases() -> None:
    while _ALIASED:
        logging.getLogger("palfrey.error").info(
            "Log config %s names uvicorn's loggers: applied to palfrey, palfrey.error and palfrey.access",
            _ALIASED.pop(),
        )


def _dict_config(config: Any, source: str, use_colors: bool | None) -> None:
    if not isinstance(config, dict):
        raise LogConfigError(f"Unable to configure logging from {source}: expected a mapping at top level.")
    # Copy only what we change: a user's dict may hold objects (streams) that cannot be deep-copied.
    config = dict(config)
    # Match fileConfig below: loggers created before configuration (e.g. the app's) keep working.
    config.setdefault("disable_existing_loggers", False)
    config = _uvicorn_aliases(config, source)
    try:
        logging.config.dictConfig(_force_colors(config, use_colors))
    except Exception as exc:
        raise LogConfigError(f"Unable to configure logging from {source}: {_describe(exc)}") from exc


def _file_config(path: str, use_colors: bool | None) -> None:
    if not os.path.isfile(path):
        raise LogConfigError(f"Log config file {path!r} does not exist.")
    source = repr(path)
    lowered = path.lower()
    if lowered.endswith(".json"):
        try:
            with open(path, encoding="utf-8") as file:
                loaded = json.load(file)
        except (OSError, ValueError) as exc:
            raise LogConfigError(f"Unable to read log config {source}: {_describe(exc)}") from exc
        _dict_config(loaded, source, use_colors)
    elif lowered.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise LogConfigError(
                f"Log config {source} is YAML, which needs PyYAML: pip install pyyaml (or install palfrey with its standard extra)."
            ) from None
        try:
            with open(path, encoding="utf-8") as file:
                loaded = yaml.safe_load(file)
        except (OSError, yaml.YAMLError) as exc:
            raise LogConfigError(f"Unable to read log config {source}: {_describe(exc)}") from exc
        _dict_config(loaded, source, use_colors)
    else:
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
            if _UVICORN_QUALNAME.search(text) and not _PALFREY_QUALNAME.search(text):
                text = _UVICORN_QUALNAME.sub(r"\1palfrey", text)  # as _uvicorn_aliases, for .ini files
                for uvicorn_name, palfrey_name in _UVICORN_FORMATTERS.items():
                    text = text.replace(uvicorn_name, palfrey_name)
                _ALIASED.append(source)
            logging.config.fileConfig(io.StringIO(text), disable_existing_loggers=False)
        except Exception as exc:
            raise LogConfigError(f"Unable to configure logging from {source}: {_describe(exc)}") from exc


def configure_logging(
    *,
    log_config: str | os.PathLike[str] | dict[str, Any] | None,
    log_level: str | int | None,
    access_log: bool,
    use_colors: bool | None,
    log_format: str = "text",
) -> None:
    """Apply the logging options; raises :class:`LogConfigError` (one clear line) on any failure.

    Order mirrors uvicorn: the config first, then ``log_level`` overrides it, then ``access_log=False``
    silences ``palfrey.access`` so an :class:`AccessLog` built afterwards reports ``enabled=False``.
    ``log_format`` picks the default config (text or JSON lines); a ``log_config`` replaces that
    default, so it decides the format itself (it can name ``palfrey.logging.JsonFormatter``).
    """
    if log_format not in LOG_FORMATS:
        raise LogConfigError(f"Invalid log format {log_format!r}; choose from {', '.join(LOG_FORMATS)}.")
    level = None if log_level is None else _resolve_level(log_level)
    for name in PALFREY_LOGGERS:  # Undo an earlier access_log=False (reloads, tests).
        logging.getLogger(name).disabled = False
    if log_config is None and log_format == "json":
        _dict_config(JSON_LOGGING_CONFIG, "the JSON config", None)
        logging.captureWarnings(True)  # a Python warning is a record too, not a plain stderr line
    elif log_config is None:
        _dict_config(LOGGING_CONFIG, "the default config", use_colors)
    elif isinstance(log_config, dict):
        _dict_config(log_config, "the log_config dict", use_colors)
    else:
        _file_config(os.fspath(log_config), use_colors)
    if level is not None:
        for name in PALFREY_LOGGERS:
            logging.getLogger(name).setLevel(level)
    if not access_log:
        access = logging.getLogger("palfrey.access")
        access.handlers = []
        access.propagate = False
        access.disabled = True
    _report_aliases()
    if log_config is not None and log_format == "json":
        logging.getLogger("palfrey.error").warning(
            "--log-format json has no effect with --log-config: the config decides the format "
            "(name palfrey.logging.JsonFormatter in it for JSON lines)."
        )
