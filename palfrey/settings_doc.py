"""Renders docs/settings.md from the settings table, so the reference cannot drift from the code.

`python -m palfrey.settings_doc > docs/settings.md` (or `make docs`); a test fails when the file is stale.
"""

from __future__ import annotations

from palfrey.options import OPTIONS, Option


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
        "Generated from `palfrey/options.py` by `make docs`; do not edit by hand.",
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


if __name__ == "__main__":
    print(render(), end="")
