"""`Option`: one entry of the settings table (name, kind, default, help, checks), and the kinds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Kinds decide both the click type and the validation of keyword arguments.
STR, INT, FLOAT, BOOL, CHOICE, MULTI = "str", "int", "float", "bool", "choice", "multi"


_PYTHON_TYPES = {
    STR: "str",
    INT: "int",
    FLOAT: "float",
    BOOL: "bool",
    CHOICE: "str",
    MULTI: "tuple[str, ...]",
}


@dataclass(frozen=True)
class Option:
    """One setting: its name, type, default, help text and how it is exposed."""

    name: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    flag: str | None = None  # CLI spelling when it is not derived from the name
    short: str | None = None
    metavar: str | None = None
    minimum: float | None = None
    nullable: bool = False  # None is a valid value (meaning "not set")
    cli: bool = True
    # A feature that lands in a later release: any value other than the default is refused
    # with this message instead of being silently ignored.
    pending: str | None = None
    # Extra validation/normalisation of the value after type checks (raises ValueError).
    check: Callable[[Any], Any] | None = None
    # The Python type of the value in `Config` when `kind` does not say it (a check converts it).
    python_type: str | None = None

    @property
    def cli_flag(self) -> str:
        if self.flag:
            return self.flag
        dashed = "--" + self.name.replace("_", "-")
        if self.kind == BOOL:
            return f"{dashed}/--no-{self.name.replace('_', '-')}"
        return dashed

    @property
    def envvar(self) -> str:
        return "PALFREY_" + self.name.upper()

    @property
    def annotation(self) -> str:
        """The type of `Config.<name>` as source text; `Config`'s annotations must match it (a test
        checks), so `config.port` is an `int` to mypy, not `Any`."""
        if self.python_type is not None:
            return self.python_type
        base = _PYTHON_TYPES[self.kind]
        return f"{base} | None" if self.nullable or self.default is None else base
