"""`palfrey.Config`: keyword validation, immutability and the environment rules it owns
(WEB_CONCURRENCY, FORWARDED_ALLOW_IPS, --env-file). Every option's round trip through the CLI and
Config is in test_cli.py; this file covers the rules around them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from palfrey import Config
from palfrey.config import ConfigError
from palfrey.options import OPTIONS, OPTIONS_BY_NAME

APP = "tests.apps.server_apps:app"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "CONFIG_TEST_VALUE"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_come_from_the_table() -> None:
    config = Config(APP)
    for option in OPTIONS:
        if option.name in ("workers", "forwarded_allow_ips", "threads"):
            continue  # resolved from the environment, or spelled differently: below
        assert getattr(config, option.name) == option.default, option.name
    assert config.workers == 1
    assert OPTIONS_BY_NAME["threads"].default == "auto" and config.threads == 0  # 0: the adaptive pool
    assert config.forwarded_allow_ips == "127.0.0.1,::1"  # uvicorn's default
    assert dict(config)["port"] == 8000
    assert config.values["host"] == "127.0.0.1"


def test_unknown_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"unknown setting.*bogus"):
        Config(APP, bogus=1)


def test_config_is_immutable_and_replace_validates() -> None:
    config = Config(APP, port=0)
    with pytest.raises(AttributeError, match="immutable"):
        config.port = 1  # type: ignore[misc]
    changed = config.replace(port=9000, root_path="/x")
    assert (config.port, changed.port, changed.root_path) == (0, 9000, "/x")
    with pytest.raises(ConfigError, match="--port must be at least 0"):
        config.replace(port=-5)
    with pytest.raises(AttributeError, match="no setting 'nope'"):
        config.nope  # noqa: B018


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"port": "eighty"}, "--port expects an integer"),
        ({"access_log": "yes"}, "--access-log expects true or false"),
        ({"timeout_keep_alive": "soon"}, "--timeout-keep-alive expects a number"),
        ({"lifespan": "sometimes"}, "--lifespan must be one of auto, on, off"),
        ({"host": 127}, "--host expects a string"),
        ({"backlog": 0}, "--backlog must be at least 1"),
        ({"port": None}, "--port cannot be None"),
        ({"headers": ["bad"]}, "--header: header 'bad' is not of the form 'name:value'"),
        ({"ws_deflate_window_bits": 16}, "--ws-deflate-window-bits: must be between 9 and 15"),
        ({"uds": "/tmp/a.sock", "fd": 3}, "--uds and --fd cannot be used together"),
        ({"ssl_certfile": "cert.pem"}, "must be given together"),
        ({"forwarded_allow_ips": "10.0.0.1/8"}, "--forwarded-allow-ips: invalid trusted host entry"),
    ],
)
def test_bad_values_are_one_line_config_errors(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config(APP, **settings)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_values_are_normalised() -> None:
    config = Config(
        APP, port="8080", timeout_keep_alive=2, lifespan="ON", headers="x-a:1", app_dir=Path("/srv/app")
    )
    assert config.port == 8080
    assert config.timeout_keep_alive == 2
    assert config.lifespan == "on"
    assert config.headers == ("x-a:1",)
    assert config.app_dir == "/srv/app"


@pytest.mark.parametrize("app", ["module_only", ":app", "module:", ""])
def test_bad_import_string(app: str) -> None:
    with pytest.raises(ConfigError, match="must be in format"):
        Config(app)


def test_app_object_and_log_config_dict_are_accepted() -> None:
    async def app(scope: object, receive: object, send: object) -> None: ...

    config = Config(app, log_config={"version": 1})
    assert config.app is app
    assert config.log_config == {"version": 1}


@pytest.mark.parametrize(("raw", "workers"), [(None, 1), ("", 1), (" ", 1), ("1", 1)])
def test_web_concurrency(monkeypatch: pytest.MonkeyPatch, raw: str | None, workers: int) -> None:
    if raw is not None:
        monkeypatch.setenv("WEB_CONCURRENCY", raw)
    assert Config(APP).workers == workers


@pytest.mark.parametrize("raw", ["lots", "1.5", "0", "-2"])
def test_bad_web_concurrency(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", raw)
    with pytest.raises(ConfigError, match="WEB_CONCURRENCY"):
        Config(APP)


def test_explicit_workers_ignore_web_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "lots")
    assert Config(APP, workers=1).workers == 1


def test_forwarded_allow_ips_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8, 192.168.1.1")
    assert Config(APP).forwarded_allow_ips == "10.0.0.0/8, 192.168.1.1"
    assert Config(APP, forwarded_allow_ips="*").forwarded_allow_ips == "*", "the option wins"
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "bogus")
    with pytest.raises(ConfigError, match="FORWARDED_ALLOW_IPS: invalid trusted host entry 'bogus'"):
        Config(APP)


def test_env_file_loads_before_environment_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("CONFIG_TEST_VALUE=from-file\nWEB_CONCURRENCY=1\nFORWARDED_ALLOW_IPS=10.1.1.1\n")
    for name in ("WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "CONFIG_TEST_VALUE"):
        monkeypatch.setenv(name, "placeholder")  # so monkeypatch restores what the file overrides
    monkeypatch.setenv("WEB_CONCURRENCY", "9")
    config = Config(APP, env_file=env_file)
    assert os.environ["CONFIG_TEST_VALUE"] == "from-file"
    assert config.workers == 1
    assert OPTIONS_BY_NAME["threads"].default == "auto" and config.threads == 0  # 0: the adaptive pool
    assert config.forwarded_allow_ips == "10.1.1.1"


def test_replace_does_not_reload_the_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("CONFIG_TEST_VALUE=from-file\n")
    monkeypatch.setenv("CONFIG_TEST_VALUE", "placeholder")
    config = Config(APP, env_file=env_file)
    assert os.environ["CONFIG_TEST_VALUE"] == "from-file"
    os.environ["CONFIG_TEST_VALUE"] = "changed-since"
    copy = config.replace(port=9001)
    assert copy.env_file == str(env_file) and copy.port == 9001
    assert os.environ["CONFIG_TEST_VALUE"] == "changed-since"
    other = tmp_path / "other.env"
    other.write_text("CONFIG_TEST_VALUE=from-other\n")
    config.replace(env_file=other)  # a different file is loaded
    assert os.environ["CONFIG_TEST_VALUE"] == "from-other"


def test_config_attributes_are_typed_from_the_table() -> None:
    """`Config`'s annotation block is `Option.annotation` for every option, in table order."""
    annotations = {k: v for k, v in Config.__annotations__.items() if k not in ("app", "_values")}
    expected = {option.name: option.annotation for option in OPTIONS}
    assert list(annotations.items()) == list(expected.items()), (
        "Config's annotations are stale: run `make docs`"
    )


def test_missing_env_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--env-file: no such file"):
        Config(APP, env_file=str(tmp_path / "missing.env"))
