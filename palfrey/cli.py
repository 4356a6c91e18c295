"""The `palfrey` command: a click command generated from the settings table.

Every option in `palfrey.options.OPTIONS` becomes a flag (with a `PALFREY_<NAME>` environment
variable), so the CLI accepts exactly what `palfrey.run()` accepts. Errors are one line and a
non-zero exit; tracebacks are only shown for exceptions raised inside the user's own code.
"""

from __future__ import annotations

import platform
import sys
from typing import Any

import click

import palfrey
from palfrey.config import Config
from palfrey.errors import EXIT_BAD_SETTINGS, EXIT_CONFIG, ConfigError
from palfrey.options import BOOL, CHOICE, FLOAT, INT, MULTI, OPTIONS, STR, Option

_CLICK_TYPES: dict[str, Any] = {STR: str, INT: int, FLOAT: float}


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(
        f"Running palfrey {palfrey.__version__} with {platform.python_implementation()} "
        f"{platform.python_version()} on {platform.system()}"
    )
    ctx.exit()


def _click_option(option: Option) -> Any:
    decls = [option.cli_flag]
    if option.short:
        decls.append(option.short)
    decls.append(option.name)
    envvars = [option.envvar]
    flag_envvar = "PALFREY_" + option.cli_flag.split("/")[0].lstrip("-").replace("-", "_").upper()
    if flag_envvar != option.envvar:
        envvars.append(flag_envvar)  # --header: PALFREY_HEADERS (uvicorn's spelling) or PALFREY_HEADER
    kwargs: dict[str, Any] = {
        "help": option.help,
        "envvar": envvars,
        "show_default": option.default not in (None, (), "") and option.kind != BOOL,
    }
    if option.kind == BOOL:
        kwargs["default"] = option.default
        if "/" not in option.cli_flag:
            if option.default is True:
                kwargs["type"] = click.BOOL  # like uvicorn's `--ws-per-message-deflate BOOLEAN`
            else:
                kwargs["is_flag"] = True
    elif option.kind == CHOICE:
        kwargs["type"] = click.Choice(option.choices, case_sensitive=False)
        kwargs["default"] = option.default
    elif option.kind == MULTI:
        kwargs["multiple"] = True
        kwargs["type"] = str
        kwargs["default"] = list(option.default)
    else:
        kwargs["type"] = _CLICK_TYPES[option.kind]
        kwargs["default"] = option.default
    if option.metavar:
        kwargs["metavar"] = option.metavar
    return click.option(*decls, **kwargs)


def _build_command() -> click.Command:
    def callback(app: str, **values: Any) -> None:
        # Pass only what the user set, so Config applies its own defaults and environment rules.
        ctx = click.get_current_context()
        settings = {
            name: value
            for name, value in values.items()
            if ctx.get_parameter_source(name) not in (click.core.ParameterSource.DEFAULT, None)
        }
        run_from_cli(app, settings)

    command: Any = callback
    for option in reversed(OPTIONS):
        if option.cli:
            command = _click_option(option)(command)
    command = click.option(
        "--version",
        is_flag=True,
        callback=_print_version,
        expose_value=False,
        is_eager=True,
        help="Display the palfrey version and exit.",
    )(command)
    command = click.argument("app", envvar="PALFREY_APP")(command)
    return click.command(context_settings={"auto_envvar_prefix": "PALFREY", "show_default": True})(command)


def fail(message: str, code: int = EXIT_CONFIG) -> None:
    """Print one clear line and exit; the operator needs the reason, not a traceback."""
    click.secho(f"Error: {message}", err=True, fg="red")
    sys.exit(code)


def run_from_cli(app: str, settings: dict[str, Any]) -> None:
    from palfrey.logging import LogConfigError
    from palfrey.main import run_config

    try:
        config = Config(app, **settings)
    except ConfigError as exc:
        fail(str(exc), code=EXIT_BAD_SETTINGS)
        return
    try:
        code = run_config(config)
    except (ConfigError, LogConfigError) as exc:
        fail(str(exc), code=EXIT_CONFIG)
        return
    sys.exit(code)


main = _build_command()
