"""Settings: environment over TOML file over defaults, and clear errors for bad values."""

from pathlib import Path

import pytest

from devlink.config import load_settings
from devlink.errors import ConfigError


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings({"DEVLINK_HOME": str(tmp_path)})
    assert settings.home == tmp_path
    assert settings.database_url == f"sqlite:///{tmp_path / 'devlink.db'}"
    assert (settings.queue_url, settings.uses_redis) == ("", False)
    assert (settings.sync_interval, settings.host, settings.port) == (60, "127.0.0.1", 8000)
    assert settings.mirrors_dir == tmp_path / "mirrors"


def test_default_home_is_under_the_user_data_directory() -> None:
    assert load_settings({}).home == Path("~/.local/share/devlink").expanduser()


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    (tmp_path / "devlink.toml").write_text('sync_interval = 15\nport = 9000\nqueue_url = "redis://127.0.0.1:6379/2"\n')
    settings = load_settings({"DEVLINK_HOME": str(tmp_path), "DEVLINK_SYNC_INTERVAL": "5"})
    assert (settings.sync_interval, settings.port, settings.uses_redis) == (5, 9000, True)


def test_config_file_can_live_elsewhere(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text("sync_interval = 30\n")
    assert load_settings({"DEVLINK_HOME": str(tmp_path), "DEVLINK_CONFIG": str(other)}).sync_interval == 30


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEVLINK_SYNC_INTERVAL": "soon"}, "DEVLINK_SYNC_INTERVAL must be a whole number, got 'soon'"),
        ({"DEVLINK_SYNC_INTERVAL": "0"}, "DEVLINK_SYNC_INTERVAL must be greater than 0, got 0"),
        ({"DEVLINK_QUEUE_URL": "amqp://x"}, "DEVLINK_QUEUE_URL must be a redis:// URL (got a 'amqp' URL)"),
    ],
    ids=["not-a-number", "zero", "wrong-queue"],
)
def test_bad_values_name_the_setting(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({"DEVLINK_HOME": str(tmp_path), **env})
    assert error.value.message == message


def test_bad_toml_is_reported(tmp_path: Path) -> None:
    (tmp_path / "devlink.toml").write_text("sync_interval = = 3\n")
    with pytest.raises(ConfigError) as error:
        load_settings({"DEVLINK_HOME": str(tmp_path)})
    assert error.value.message.startswith(f"{tmp_path / 'devlink.toml'} is not valid TOML")


def test_postgres_urls_in_every_spelling_are_accepted() -> None:
    from devlink.store.engine import make_engine

    for url in ("postgres://root@127.0.0.1/test", "postgresql://root@127.0.0.1/test",
                "postgresql+psycopg://root@127.0.0.1/test"):
        engine = make_engine(url)
        assert engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
        engine.dispose()
    with pytest.raises(ConfigError) as error:
        make_engine("mysql://root@127.0.0.1/test")
    assert error.value.message == "DEVLINK_DATABASE_URL must start with sqlite:/// or postgresql+psycopg://"
