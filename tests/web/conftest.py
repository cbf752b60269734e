"""One real ``devlink serve`` per web test module, with a fresh data directory."""

from collections.abc import Iterator

import pytest

from servers import Server, start_server, stop_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("serve") / "home")
    yield running
    stop_server(running)
