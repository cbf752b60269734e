"""DEVLINK_ALLOWED_HOSTS: comma-separated names (or a TOML list), normalised; anything else names the setting."""

from pathlib import Path

import pytest

from devlink.config import DEFAULTS, load_settings
from devlink.errors import ConfigError


def test_default_is_no_extra_name(tmp_path: Path) -> None:
    assert DEFAULTS["allowed_hosts"] == ""
    assert load_settings({"DEVLINK_HOME": str(tmp_path)}).allowed_hosts == ()


def test_names_are_split_and_normalised(tmp_path: Path) -> None:
    env = {"DEVLINK_HOME": str(tmp_path), "DEVLINK_ALLOWED_HOSTS": " Devlink.Example.com., intra ,,*"}
    settings = load_settings(env)
    assert settings.allowed_hosts == ("devlink.example.com", "intra", "*")


def test_a_toml_list_works_too(tmp_path: Path) -> None:
    (tmp_path / "devlink.toml").write_text('allowed_hosts = ["devlink.internal", "ci-runner"]\n')
    assert load_settings({"DEVLINK_HOME": str(tmp_path)}).allowed_hosts == ("devlink.internal", "ci-runner")


@pytest.mark.parametrize("value", ["https://devlink.example.com", "devlink.example.com:8443", "two words", "a/b"])
def test_what_is_not_a_name_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({"DEVLINK_HOME": str(tmp_path), "DEVLINK_ALLOWED_HOSTS": value})
    assert error.value.message.startswith("DEVLINK_ALLOWED_HOSTS: ")
    assert "without scheme or port" in (error.value.hint or "")
