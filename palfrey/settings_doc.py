"""Renders docs/settings.md from the settings table, so the reference cannot drift from the code.

`python -m palfrey.settings_doc > docs/settings.md` (or `make docs`); a test fails when the file is stale.
`python -m palfrey.settings_doc --config-annotations` rewrites the typed attribute block of
`palfrey.Config` from the same table (`make docs` runs both); a test fails when that block is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from palfrey.options import OPTIONS, Option

_BEGIN = "    # --- settings: begin ---\n"
_END = "    # --- settings: end ---\n"


def _default(option: Option) -> str:
    if option.default is None:
        return "—"
    if option.default == () or option.default == "":
        return "(empty)"
    if option.kind == "bool":
        return "on" if option.default else "off"
    return f"`{option.default}`"


def render() -> str:
    lines = [
        "# Settings reference",
        "",
        "Generated from the settings table in `palfrey/options/` by `make docs`; do not edit by hand.",
        "",
        "Every setting is a CLI flag, a `palfrey.run()` / `palfrey.Config()` keyword (the name column), and an",
        "environment variable for the CLI. Repeatable flags take several values from the environment",
        "separated by spaces.",
        "",
        "| flag | keyword | environment | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for option in OPTIONS:
        flag = " / ".join(f"`{f}`" for f in option.cli_flag.split("/"))
        if option.short:
            flag += f", `{option.short}`"
        meaning = option.help.replace("|", "\\|")
        if option.choices:
            meaning += " One of: " + ", ".join(f"`{c}`" for c in option.choices) + "."
        if option.pending:
            meaning += f" *Not available yet: {option.pending}.*"
        lines.append(f"| {flag} | `{option.name}` | `{option.envvar}` | {_default(option)} | {meaning} |")
    lines.append("")
    return "\n".join(lines)


def config_annotations() -> str:
    """The lines between the markers in `Config`'s class body: one `name: type` per setting."""
    return "".join(f"    {option.name}: {option.annotation}\n" for option in OPTIONS)


def write_config_annotations(path: Path = Path(__file__).with_name("config.py")) -> bool:
    """Rewrite the block in config.py; True when it changed."""
    text = path.read_text()
    start = text.index(_BEGIN) + len(_BEGIN)
    end = text.index(_END, start)
    updated = text[:start] + config_annotations() + text[end:]
    if updated == text:
        return False
    path.write_text(updated)
    return True


if __name__ == "__main__":
    if sys.argv[1:] == ["--config-annotations"]:
        write_config_annotations()
    else:
        print(render(), end="")
