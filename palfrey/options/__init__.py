"""The settings table: every option palfrey has, declared exactly once.

The click CLI (`palfrey.cli`), `palfrey.run(**kwargs)`, `palfrey.Config(...)`, the `PALFREY_*`
environment variables and the settings reference in the docs are all derived from `OPTIONS`, so a
setting cannot drift between entry points. Names and defaults follow uvicorn's where uvicorn has the
option, so `uvicorn main:app --flags` becomes `palfrey main:app --flags`.
"""

from __future__ import annotations

from palfrey.options.limits import LIMITS
from palfrey.options.operations import OPERATIONS
from palfrey.options.option import BOOL, CHOICE, FLOAT, INT, MULTI, STR, Option
from palfrey.options.serving import SERVING

__all__ = ["BOOL", "CHOICE", "FLOAT", "INT", "MULTI", "OPTIONS", "OPTIONS_BY_NAME", "STR", "Option"]

# In this order in `palfrey --help` and docs/settings.md.
OPTIONS: tuple[Option, ...] = (*SERVING, *LIMITS, *OPERATIONS)

OPTIONS_BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}
