"""Helpers for the tests that run the deployment recipes of docs_src/deploy/ (tests/test_deploy_*.py).

The recipes are written for production (real addresses, real paths, production timings). A test
reads a recipe as it is and substitutes only what a test must change: addresses become loopback
and free ports, paths land in tmp_path, the app is `docs_src.deploy.app:app`, and probe timings are
shortened so a phase takes seconds. Every substitution asserts that its text is in the recipe, so a
recipe edit that would leave the test running something else fails loudly instead.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from typing import Any

import click
import pytest

from palfrey import cli
from palfrey.config import Config
from tests.support import ROOT

DEPLOY = ROOT / "docs_src" / "deploy"
APP = "docs_src.deploy.app:app"


def recipe(name: str) -> str:
    return (DEPLOY / name).read_text()


def substitute(text: str, old: str, new: str, count: int = 1) -> str:
    """`text` with `old` replaced by `new`, which must occur exactly `count` times."""
    found = text.count(old)
    assert found == count, f"the recipe should contain {old!r} {count}x, found {found}x"
    return text.replace(old, new)


def commented_command(text: str) -> list[str]:
    """The `palfrey ...` command a recipe shows in its comments (with `\\` continuations), as argv."""
    lines = [line.lstrip("#").strip() for line in text.splitlines()]
    for index, line in enumerate(lines):
        if line.startswith("palfrey "):
            command = line
            while command.endswith("\\"):
                index += 1
                command = command[:-1] + " " + lines[index]
            return shlex.split(command)
    raise AssertionError("the recipe shows no palfrey command")


def set_arg(argv: list[str], flag: str, value: str) -> list[str]:
    """argv with the value after `flag` replaced (the flag must be there)."""
    assert flag in argv, f"{flag} is not in {argv}"
    index = argv.index(flag)
    return [*argv[: index + 1], value, *argv[index + 2 :]]


def arg(argv: list[str], flag: str) -> str:
    assert flag in argv, f"{flag} is not in {argv}"
    return argv[argv.index(flag) + 1]


def parse_palfrey_args(argv: list[str]) -> Config:
    """The Config palfrey's own CLI builds from `argv` (without the leading `palfrey`), not run.

    An unknown flag or a bad value fails here exactly as `palfrey ...` would fail at startup.
    """
    captured: dict[str, Any] = {}

    def capture(app: str, settings: dict[str, Any]) -> None:
        captured.update(app=app, settings=settings)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "run_from_cli", capture)
        try:
            cli.main.main(argv, prog_name="palfrey", standalone_mode=False)
        except click.ClickException as exc:
            raise AssertionError(f"palfrey rejects {argv}: {exc.format_message()}") from None
    return Config(captured["app"], **captured["settings"])


def tool(name: str) -> str:
    """A Debian tool the Makefile's `test-tools` installs; the test fails (never skips) without it."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    found = shutil.which(name, path=path)
    if found is None:
        pytest.fail(f"{name} is not installed: `make test` installs it (see TEST_TOOLS in the Makefile)")
    return found


def unit_values(text: str) -> dict[str, list[str]]:
    """A systemd unit file as `Section.Key` -> values (a key may repeat), continuations joined."""
    values: dict[str, list[str]] = {}
    section = ""
    logical: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if logical:
            logical.append(line)
        elif not line or line.startswith(("#", ";")):
            continue
        else:
            logical = [line]
        if line.endswith("\\"):
            logical[-1] = line[:-1]
            continue
        full = " ".join(part.strip() for part in logical)
        logical = []
        if match := re.fullmatch(r"\[(\w+)\]", full):
            section = match.group(1)
            continue
        key, _, value = full.partition("=")
        values.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return values
