"""Console formatters: uvicorn-style level prefixes, colors on terminals, and the access formatter
(`200 OK`, status colored by class, uvicorn's `client_addr`/`request_line`/`status_code` fields)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

import click

from palfrey.logging.access import _STATUS_PHRASES, DEFAULT_ACCESS_MESSAGE, AccessAtoms
from palfrey.logging.levels import TRACE_LOG_LEVEL

# --------------------------------------------------------------------------------------------------
# Formatters
# --------------------------------------------------------------------------------------------------

_LEVEL_COLORS: dict[int, str] = {
    TRACE_LOG_LEVEL: "blue",
    logging.DEBUG: "cyan",
    logging.INFO: "green",
    logging.WARNING: "yellow",
    logging.ERROR: "red",
    logging.CRITICAL: "bright_red",
}

_STATUS_COLORS: dict[int, str] = {1: "bright_white", 2: "green", 3: "yellow", 4: "red", 5: "bright_red"}


_DEFAULT_FORMATS: dict[str, str] = {
    "%": "%(levelprefix)s %(message)s",
    "{": "{levelprefix} {message}",
    "$": "${levelprefix} ${message}",
}


def _stream_is_tty(stream: TextIO | None) -> bool:
    """Decide auto colors: only for a real terminal, and never when NO_COLOR is set (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except ValueError:  # closed stream
        return False


class DefaultFormatter(logging.Formatter):
    """Render ``%(levelprefix)s`` (``INFO:     ``) so palfrey's output lines up exactly like uvicorn's.

    ``use_colors=None`` colors only when the formatter's usual stream (stderr) is a terminal; a record
    carrying a ``color_message`` attribute uses it instead of ``msg`` when colors are on.
    """

    #: The stream this formatter normally writes to, consulted when ``use_colors`` is None.
    default_stream_name: str = "stderr"

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: str = "%",
        use_colors: bool | None = None,
        *,
        validate: bool = True,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        if fmt is None:
            fmt = _DEFAULT_FORMATS.get(style)
        super().__init__(fmt, datefmt, style, validate, defaults=defaults)  # type: ignore[arg-type]
        if use_colors is None:
            use_colors = _stream_is_tty(getattr(sys, self.default_stream_name, None))
        self.use_colors: bool = bool(use_colors)
        self._prefixes: dict[tuple[int, str], str] = {}

    def levelprefix(self, levelno: int, levelname: str) -> str:
        """Pad from the *plain* name so colored and plain lines align; cached since levels are few."""
        key = (levelno, levelname)
        prefix = self._prefixes.get(key)
        if prefix is None:
            padding = " " * max(0, 8 - len(levelname))
            color = _LEVEL_COLORS.get(levelno)
            name = click.style(levelname, fg=color) if self.use_colors and color else levelname
            prefix = self._prefixes[key] = f"{name}:{padding}"
        return prefix

    def format(self, record: logging.LogRecord) -> str:
        """Decorate a copy so other handlers of the same record never see our ANSI codes."""
        duplicate = record.__class__.__new__(record.__class__)
        duplicate.__dict__.update(record.__dict__)  # Shallow, like copy.copy but cheaper per line.
        self.decorate(duplicate)
        return super().format(duplicate)

    def decorate(self, record: logging.LogRecord) -> None:
        """Add ``levelprefix`` (and swap in ``color_message``) on the record copy before formatting."""
        record.levelprefix = self.levelprefix(record.levelno, record.levelname)
        if self.use_colors:
            color_message = record.__dict__.get("color_message")
            if color_message is not None:
                record.msg = color_message


class _StyledStatus(int):
    """An int that prints colored: ``%(s)d`` keeps working while ``%(s)s`` gets the color."""

    styled: str

    def __str__(self) -> str:
        return self.styled


class _StyledAtoms(Mapping[str, Any]):
    """A view of :class:`AccessAtoms` whose status atoms are colored, without touching the original."""

    __slots__ = ("_atoms", "_s", "_status_code")

    def __init__(self, atoms: AccessAtoms, s: int, status_code: str) -> None:
        self._atoms = atoms
        self._s = s
        self._status_code = status_code

    def __getitem__(self, key: str) -> Any:
        if key == "s":
            return self._s
        if key == "status_code":
            return self._status_code
        return self._atoms[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._atoms)

    def __len__(self) -> int:
        return len(self._atoms)


class AccessFormatter(DefaultFormatter):
    """Format access records: expose ``client_addr``/``request_line``/``status_code`` like uvicorn's
    formatter does, show ``200 OK`` rather than ``200``, and color the status by class when colors are on.

    It understands both record shapes :class:`AccessLog` emits: uvicorn's 5-tuple ``args`` (default
    format) and an :class:`AccessAtoms` mapping (custom ``--access-log-format``).
    """

    default_stream_name = "stdout"

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: str = "%",
        use_colors: bool | None = None,
        *,
        validate: bool = True,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(fmt, datefmt, style, use_colors, validate=validate, defaults=defaults)
        self._statuses: dict[int, str] = {}
        self._styled_ints: dict[int, _StyledStatus] = {}
        # Only build the uvicorn-style fields when this formatter's own format asks for them.
        self._uses_fields: bool = any(
            field in self._style._fmt for field in ("client_addr", "request_line", "status_code")
        )

    def styled_int(self, status: int) -> _StyledStatus:
        """The bare status code colored by class, as an int so numeric conversions still work."""
        styled = self._styled_ints.get(status)
        if styled is None:
            styled = self._styled_ints[status] = _StyledStatus(status)
            color = _STATUS_COLORS.get(status // 100)
            styled.styled = click.style(str(status), fg=color) if color else str(status)
        return styled

    def status_text(self, status: int) -> str:
        """``200 OK``, colored by class when enabled; cached per status code."""
        text = self._statuses.get(status)
        if text is None:
            phrase = _STATUS_PHRASES.get(status)
            text = f"{status} {phrase}" if phrase else str(status)
            color = _STATUS_COLORS.get(status // 100)
            if self.use_colors and color:
                text = click.style(text, fg=color)
            self._statuses[status] = text
        return text

    def decorate(self, record: logging.LogRecord) -> None:
        super().decorate(record)
        args = record.args
        fields = self._uses_fields
        if isinstance(args, AccessAtoms):
            if self.use_colors:
                record.args = _StyledAtoms(args, self.styled_int(args.status), self.status_text(args.status))
            if fields:
                record.client_addr = args["client_addr"]
                record.request_line = args["request_line"]
                record.status_code = self.status_text(args.status)
        elif record.msg == DEFAULT_ACCESS_MESSAGE and isinstance(args, tuple) and len(args) == 5:
            client_addr, method, target, http_version, status = args
            status_text = self.status_text(status) if isinstance(status, int) else str(status)
            record.args = (client_addr, method, target, http_version, status_text)
            if fields:
                record.client_addr = client_addr
                record.request_line = f"{method} {target} HTTP/{http_version}"
                record.status_code = status_text
        elif fields:  # Someone else's record on the access logger: fill what the format references.
            status = record.__dict__.get("status_code")
            record.status_code = self.status_text(status) if isinstance(status, int) else "-"
            record.client_addr = record.__dict__.get("client_addr", "-")
            record.request_line = record.__dict__.get("request_line", "-")
