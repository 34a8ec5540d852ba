from __future__ import annotations

from pathlib import Path

import pytest

from turnout.core import ConfigError, load_settings


def test_defaults(clean_env: Path) -> None:
    settings = load_settings()
    assert settings.home_dir == clean_env
    assert settings.catalog_files == []


def test_default_home_without_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TURNOUT_HOME")
    assert load_settings().home_dir == Path("~/.turnout").expanduser()


def test_yaml_file_then_env_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "turnout.yaml"
    config.write_text("log_level: debug\ncatalog_files: [a.yaml]\n")
    assert load_settings(config).log_level == "debug"
    monkeypatch.setenv("TURNOUT_LOG_LEVEL", "error")
    settings = load_settings(config)
    assert settings.log_level == "error"
    assert settings.catalog_files == [Path("a.yaml")]


def test_turnout_yaml_in_working_directory_is_found() -> None:
    Path("turnout.yaml").write_text("log_level: warning\n")
    assert load_settings().log_level == "warning"


def test_turnout_config_env_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "elsewhere.yaml"
    config.write_text("log_level: debug\n")
    monkeypatch.setenv("TURNOUT_CONFIG", str(config))
    assert load_settings().log_level == "debug"


def test_bad_value_names_file_key_and_expectation(tmp_path: Path) -> None:
    config = tmp_path / "turnout.yaml"
    config.write_text("log_level: loud\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    message = str(info.value)
    assert str(config) in message and "'log_level'" in message
    assert "'debug', 'info', 'warning' or 'error'" in message and "'loud'" in message


def test_unknown_key_is_named(tmp_path: Path) -> None:
    config = tmp_path / "turnout.yaml"
    config.write_text("log_levle: debug\n")
    with pytest.raises(ConfigError, match="unknown key 'log_levle'"):
        load_settings(config)


def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_LOG_LEVEL", "loud")
    with pytest.raises(ConfigError, match="environment variable TURNOUT_LOG_LEVEL"):
        load_settings()


@pytest.mark.parametrize(
    ("text", "message"), [("a: [", "not valid YAML"), ("- 1\n", "expected a mapping")]
)
def test_unreadable_yaml(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "turnout.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.yaml")


def test_importing_reads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    Path("turnout.yaml").write_text("this: is: broken\n")
    code = "import turnout, turnout.core, turnout.cli; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
