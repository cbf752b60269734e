"""Migration 0007 carries GitHub rows over unchanged: App settings into host options, the installation into
account options, each repository's full path from its name; and back again on downgrade."""

import json
from datetime import UTC, datetime
from typing import Any

from alembic import command
from sqlalchemy import Engine, create_engine, inspect, text

from devlink.store.migrate import alembic_config


def _insert(engine: Engine, table: str, values: dict[str, Any]) -> None:
    """A row as an older devlink wrote it: every NOT NULL column the test does not name gets a plain value."""
    row = dict(values)
    for column in inspect(engine).get_columns(table):
        name = column["name"]
        if name in row or column["nullable"] or column.get("autoincrement") is True or name == "id":
            continue
        kind = str(column["type"]).upper()
        row[name] = (datetime.now(UTC) if "DATE" in kind or "TIME" in kind else False if "BOOL" in kind
                     else 0 if "INT" in kind or "FLOAT" in kind else "x")
    names = ", ".join(row)
    with engine.begin() as connection:
        connection.execute(text(f"INSERT INTO {table} ({names}) VALUES ({', '.join(':' + n for n in row)})"), row)


def test_github_rows_carry_over_and_back(database_url: str) -> None:
    engine = create_engine(database_url)
    config = alembic_config(engine)
    try:
        command.upgrade(config, "0006")
        _insert(engine, "hosts", {"id": 1, "kind": "github-enterprise", "name": "ghe.example.com",
                                  "web_url": "https://ghe.example.com", "api_url": "https://ghe.example.com/api/v3",
                                  "app_id": "4242", "app_private_key": "gAAAA-key", "app_webhook_secret": "gAAAA-s"})
        _insert(engine, "accounts", {"id": 1, "host_id": 1, "name": "acme", "kind": "organization",
                                     "auth_kind": "app", "installation_id": "77", "auto_link": False,
                                     "smart_commits": True})
        _insert(engine, "accounts", {"id": 2, "host_id": 1, "name": "octo", "kind": "user", "auth_kind": "token",
                                     "credential": "gAAAA-token", "auto_link": False, "smart_commits": True})
        _insert(engine, "repositories", {"id": 1, "host_id": 1, "account_id": 1, "external_id": "9",
                                         "name": "acme/api", "url": "https://ghe.example.com/acme/api.git"})
        _insert(engine, "repositories", {"id": 2, "host_id": 1, "account_id": 2, "external_id": "10",
                                         "name": "ghe.example.com/octo/api", "url": "https://ghe.example.com/o.git"})
        _insert(engine, "repositories", {"id": 3, "host_id": 1, "account_id": None, "name": "local",
                                         "url": "/srv/git/local.git"})
        command.upgrade(config, "head")
        with engine.connect() as connection:
            host = connection.execute(text("SELECT kind, options FROM hosts")).one()
            accounts = dict(connection.execute(text("SELECT name, options FROM accounts")).all())
            paths = dict(connection.execute(text("SELECT id, host_path FROM repositories")).all())
            credential = connection.execute(text("SELECT credential FROM accounts WHERE id = 2")).scalar_one()
        assert host.kind == "github-enterprise"
        assert json.loads(host.options) == {"app_id": "4242", "app_private_key": "gAAAA-key",
                                            "app_webhook_secret": "gAAAA-s"}
        assert json.loads(accounts["acme"]) == {"installation_id": "77"} and accounts["octo"] is None
        assert credential == "gAAAA-token"
        assert paths == {1: "acme/api", 2: "octo/api", 3: None}
        assert "app_id" not in {c["name"] for c in inspect(engine).get_columns("hosts")}

        command.downgrade(config, "0006")
        with engine.connect() as connection:
            back = connection.execute(text("SELECT app_id, app_private_key, app_webhook_secret FROM hosts")).one()
            installation = connection.execute(text("SELECT installation_id FROM accounts WHERE id = 1")).scalar()
        assert tuple(back) == ("4242", "gAAAA-key", "gAAAA-s") and installation == "77"
        assert "host_path" not in {c["name"] for c in inspect(engine).get_columns("repositories")}
    finally:
        engine.dispose()
