"""The `palfrey` command line: every option of the settings table, env vars, errors and exit codes.

Option parsing is checked in-process with click's runner (one case per option, generated from
`palfrey.options.OPTIONS`, so a new option is covered the day it is added); everything a user sees
(help, version, errors, env vars reaching a running server) is checked on real `python -m palfrey`
processes.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

import palfrey
import palfrey.cli
from palfrey.config import Config, ConfigError
from palfrey.options import BOOL, CHOICE, FLOAT, INT, MULTI, OPTIONS, STR, Option
from tests.support import ServerProcess, palfrey_command, run_server, spawn, stop

APP = "tests.apps.server_apps:app"
READY = r"Palfrey running on (\S+)"
# Being built by another engineer (the pre-fork master): their values are not checked here.
ELSEWHERE = {"workers", "reload", "reload_dirs", "reload_includes", "reload_excludes", "reload_delay"}
# Options whose check turns the command line's text into another value in Config.
NORMALISED: dict[str, Any] = {"threads": 32}


def sample(option: Option, tmp_path: Path) -> tuple[list[str], Any]:
    """Command-line arguments that set `option` to a valid non-default value, and that value."""
    flag = option.cli_flag.split("/")[0]
    special: dict[str, tuple[list[str], Any]] = {
        "host": (["--host", "0.0.0.0"], "0.0.0.0"),
        "uds": (["--uds", str(tmp_path / "s.sock")], str(tmp_path / "s.sock")),
        "env_file": (["--env-file", str(tmp_path / "x.env")], str(tmp_path / "x.env")),
        "log_config": (["--log-config", str(tmp_path / "log.json")], str(tmp_path / "log.json")),
        "access_log_format": (["--access-log-format", "%(h)s %(s)s"], "%(h)s %(s)s"),
        "forwarded_allow_ips": (["--forwarded-allow-ips", "10.0.0.0/8,::1"], "10.0.0.0/8,::1"),
        "ssl_cert_reqs": (["--ssl-cert-reqs", "2"], 2),
        "ssl_version": (["--ssl-version", "2"], 2),
        "headers": (["-H", "x-a:1", "--header", "X-B: two words"], ("x-a:1", "X-B: two words")),
        "ws_per_message_deflate": (["--ws-per-message-deflate", "false"], False),
        "ws_deflate_window_bits": (["--ws-deflate-window-bits", "10"], 10),
        "metrics_bind": (["--metrics-bind", "0.0.0.0:9100"], "0.0.0.0:9100"),
        "threads": (["--threads", "32"], "32"),  # text on the command line ("auto" too); Config: 32
        "health_bind": (["--health-bind", "0.0.0.0:8081"], "0.0.0.0:8081"),
    }
    if option.name in special:
        return special[option.name]
    if option.kind == BOOL:
        if "/" in option.cli_flag:
            positive, negative = option.cli_flag.split("/")
            return ([negative], False) if option.default else ([positive], True)
        return [flag], True
    if option.kind == INT:
        value = int(option.minimum or 0) + 3
        return [flag, str(value)], value
    if option.kind == FLOAT:
        value = float(option.minimum or 0) + 2.5
        return [flag, str(value)], value
    if option.kind == CHOICE:
        value = next(c for c in reversed(option.choices) if c != option.default and c != "wsproto")
        if option.name == "ws":
            value = "none"
        return [flag, value.upper()], value  # choices are case-insensitive
    if option.kind == MULTI:
        return [flag, "a", flag, "b"], ("a", "b")
    assert option.kind == STR, option
    return [flag, "sample"], "sample"


def parse(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the click command in-process and capture the settings it would hand to Config."""
    captured: dict[str, Any] = {}

    def fake_run(app: str, settings: dict[str, Any]) -> None:
        captured.update(settings, __app__=app)

    original = palfrey.cli.run_from_cli
    palfrey.cli.run_from_cli = fake_run
    try:
        result = CliRunner().invoke(palfrey.cli.main, args, env=env, catch_exceptions=False)
    finally:
        palfrey.cli.run_from_cli = original
    assert result.exit_code == 0, result.output
    return captured


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.name)
def test_every_option_reaches_config(option: Option, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLI_TEST_ENV_FILE_VALUE", "before")  # restored after Config loads the file
    (tmp_path / "x.env").write_text("CLI_TEST_ENV_FILE_VALUE=1\n")
    args, expected = sample(option, tmp_path)
    assert expected != option.default
    settings = parse([APP, *args])
    assert settings[option.name] == expected
    assert set(settings) == {option.name, "__app__"}, "only options the user set are passed on"
    if option.name in ELSEWHERE:
        return
    extra = {}
    if option.name in ("ssl_keyfile", "ssl_certfile"):
        extra = {"ssl_keyfile": "k.pem", "ssl_certfile": "c.pem", option.name: expected}
    if option.pending is not None:
        with pytest.raises(ConfigError, match=re.escape(option.pending)):
            Config(APP, **{option.name: expected})
        return
    config = Config(APP, **{option.name: expected, **extra})
    assert getattr(config, option.name) == NORMALISED.get(option.name, expected)


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.name not in ELSEWHERE], ids=lambda o: o.name)
def test_every_option_from_environment(option: Option, tmp_path: Path) -> None:
    args, expected = sample(option, tmp_path)
    if option.kind == BOOL:
        raw = str(expected).lower()
    elif option.kind == MULTI:
        raw = " ".join(args[1::2]) if option.name != "headers" else "x-a:1 x-b:2"
        expected = expected if option.name != "headers" else ("x-a:1", "x-b:2")
    else:
        raw = args[-1]
    settings = parse([APP], env={option.envvar: raw})
    assert settings[option.name] == expected


def test_header_env_var_under_flag_name_too() -> None:
    assert parse([APP], env={"PALFREY_HEADER": "x-a:1 x-b:2"})["headers"] == ("x-a:1", "x-b:2")


def test_app_from_environment() -> None:
    assert parse([], env={"PALFREY_APP": APP})["__app__"] == APP


def test_help_lists_every_option() -> None:
    result = subprocess.run(
        palfrey_command("--help"),
        capture_output=True,
        text=True,
        timeout=20,
        cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 0, result.stderr
    for option in OPTIONS:
        if not option.cli:
            continue
        for flag in option.cli_flag.split("/"):
            assert re.search(rf"(^|[\s,]){re.escape(flag)}([\s,=]|$)", result.stdout, re.M), flag
        if option.short:
            assert re.search(rf"(^|\s){re.escape(option.short)}[\s,]", result.stdout, re.M), option.short
    assert "--version" in result.stdout


def test_version() -> None:
    result = subprocess.run(palfrey_command("--version"), capture_output=True, text=True, timeout=20)
    assert result.returncode == 0
    assert re.fullmatch(
        rf"Running palfrey {re.escape(palfrey.__version__)} with \w+ [\d.]+\S* on \w+\n", result.stdout
    )


def one_error_line(server: ServerProcess, code: int, message: str) -> str:
    assert server.wait_exit(timeout=15) == code, server.output()
    output = server.output()
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if re.match(r"(Error:|ERROR:)", line)]
    assert len(errors) == 1, output
    assert message in errors[0], output
    return errors[0]


CONFIG_ERRORS = [
    (["--port", "abc"], "Invalid value for '--port'"),
    (["--port", "-1"], "--port must be at least 0"),
    (["--bogus"], "No such option '--bogus'"),
    (["--lifespan", "maybe"], "Invalid value for '--lifespan'"),
    (["--header", "no-colon"], "is not of the form 'name:value'"),
    (["--access-log-format", "%(nope)s"], "unknown atom 'nope'"),
    (["--forwarded-allow-ips", "not-an-ip"], "invalid trusted host entry 'not-an-ip'"),
    (["--env-file", "/nonexistent/palfrey.env"], "--env-file: no such file"),
    (["--uds", "/tmp/x.sock", "--fd", "3"], "--uds and --fd cannot be used together"),
    (["--ssl-keyfile", "key.pem"], "--ssl-keyfile and --ssl-certfile must be given together"),
    (["--timeout-keep-alive", "-1"], "--timeout-keep-alive must be at least 0"),
    (["--ws-max-size", "0"], "--ws-max-size must be at least 1"),
    (["--ws-deflate-window-bits", "16"], "--ws-deflate-window-bits: must be between 9 and 15"),
]


@pytest.mark.parametrize(
    ("args", "message"), CONFIG_ERRORS, ids=lambda v: " ".join(v) if isinstance(v, list) else ""
)
def test_config_error_is_one_line_exit_2(args: list[str], message: str) -> None:
    one_error_line(spawn(APP, "--port", "0", *args), 2, message)


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("tests.apps.server_apps", 'Import string "tests.apps.server_apps" must be in format'),
        (":app", 'Import string ":app" must be in format'),
    ],
)
def test_bad_import_string_is_config_error(app: str, message: str) -> None:
    one_error_line(spawn(app, "--port", "0"), 2, message)


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("no_such_module_anywhere:app", 'Could not import module "no_such_module_anywhere"'),
        ("tests.apps.no_such_submodule:app", 'Could not import module "tests.apps.no_such_submodule"'),
        (
            "tests.apps.server_apps:missing",
            'Attribute "missing" not found in module "tests.apps.server_apps"',
        ),
        ("tests.apps.server_apps:nested.nope", 'Attribute "nested.nope" not found'),
        ("tests.apps.server_apps:not_callable", "is not callable"),
    ],
)
def test_boot_failure_is_one_line_exit_3(app: str, message: str) -> None:
    one_error_line(spawn(app, "--port", "0"), 3, message)


def test_env_error_from_web_concurrency() -> None:
    one_error_line(spawn(APP, "--port", "0", env={"WEB_CONCURRENCY": "lots"}), 2, "WEB_CONCURRENCY")


def test_env_error_from_forwarded_allow_ips() -> None:
    one_error_line(
        spawn(APP, "--port", "0", env={"FORWARDED_ALLOW_IPS": "10.0.0.300"}), 2, "FORWARDED_ALLOW_IPS"
    )


def test_bad_log_config_is_one_line() -> None:
    server = spawn(APP, "--port", "0", "--log-config", "/nonexistent/log.json")
    assert server.wait_exit(timeout=15) != 0
    assert "Traceback" not in server.output()
    assert server.output().count("does not exist") == 1


def test_port_in_use_is_one_line() -> None:
    with run_server(APP) as first:
        server = spawn(APP, "--port", str(first.port))
        assert server.wait_exit(timeout=15) != 0
        output = server.output()
        assert "Traceback" not in output
        assert f"could not bind 127.0.0.1:{first.port}" in output


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        (
            "import palfrey_missing_dependency_xyz\n",
            "ModuleNotFoundError: No module named 'palfrey_missing_dependency_xyz'",
        ),
        (
            "raise ImportError('cannot import name thing from a library')\n",
            "ImportError: cannot import name thing",
        ),
        ("x = 1 / 0\n", "ZeroDivisionError: division by zero"),
    ],
    ids=["missing-dependency", "import-error", "other-exception"],
)
def test_error_inside_user_module_keeps_traceback(tmp_path: Path, source: str, shown: str) -> None:
    (tmp_path / "user_module.py").write_text("import os\n" + source + "async def app(s, r, c): pass\n")
    server = spawn("user_module:app", "--app-dir", str(tmp_path), "--port", "0")
    assert server.wait_exit(timeout=15) == 3
    output = server.output()
    assert 'Error while importing module "user_module"' in output
    assert "Traceback (most recent call last)" in output
    assert shown in output
    assert str(tmp_path / "user_module.py") in output, "the traceback points at the user's file"


def test_env_vars_configure_a_running_server() -> None:
    env = {
        "PALFREY_HOST": "127.0.0.1",
        "PALFREY_PORT": "0",
        "PALFREY_ROOT_PATH": "/api",
        "PALFREY_HEADERS": "x-one:1 x-two:2",
        "PALFREY_SERVER_HEADER": "false",
        "PALFREY_APP": APP,
    }
    server = spawn(env=env)
    try:
        url = server.wait_for_line(READY).group(1)
        response = httpx.get(url + "/items")  # a proxy stripped /api; the app sees the full path
        assert response.json()["root_path"] == "/api"
        assert response.json()["path"] == "/api/items"
        assert response.headers["x-one"] == "1"
        assert response.headers["x-two"] == "2"
        assert "server" not in response.headers
    finally:
        stop(server)


def test_header_env_var_with_flag_spelling_on_a_running_server() -> None:
    with run_server(APP, env={"PALFREY_HEADER": "x-flag:yes"}) as server:
        assert httpx.get(server.url + "/").headers["x-flag"] == "yes"


def test_cli_flag_beats_env_var() -> None:
    with run_server(APP, "--root-path", "/cli", env={"PALFREY_ROOT_PATH": "/env"}) as server:
        assert httpx.get(server.url + "/x").json()["root_path"] == "/cli"


def test_env_file_values_are_visible_to_the_app(tmp_path: Path) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text('APP_GREETING="hello from the env file"\nAPP_OTHER=2\n')
    with run_server(APP, "--env-file", str(env_file)) as server:
        assert (
            httpx.get(server.url + "/env", params={"name": "APP_GREETING"}).text == "hello from the env file"
        )
        assert httpx.get(server.url + "/env", params={"name": "APP_OTHER"}).text == "2"


def test_env_file_can_set_forwarded_allow_ips(tmp_path: Path) -> None:
    env_file = tmp_path / "proxy.env"
    env_file.write_text("FORWARDED_ALLOW_IPS=10.9.9.9\n")
    with run_server(APP, "--env-file", str(env_file)) as server:
        response = httpx.get(server.url + "/", headers={"x-forwarded-for": "1.2.3.4"})
        assert response.json()["client"][0] == "127.0.0.1", "127.0.0.1 is no longer trusted"


def test_web_concurrency_one_serves() -> None:
    with run_server(APP, env={"WEB_CONCURRENCY": "1"}) as server:
        assert httpx.get(server.url + "/").status_code == 200
