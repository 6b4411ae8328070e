from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from chimatic import Chimatic
from tests.server import LocalHTTPServer, Server, Workspace

_names = itertools.count(1)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """One chimatic server for the whole run; every test module gets its own workspace."""
    s = Server("sdk-python")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def workspace(server: Server, request: pytest.FixtureRequest) -> Workspace:
    module = request.module.__name__.rsplit(".", 1)[-1]
    return server.create_workspace(f"{module}-{next(_names)}")


@pytest.fixture(scope="module")
def client(server: Server, workspace: Workspace) -> Iterator[Chimatic]:
    with Chimatic(api_key=workspace.api_key, base_url=server.url) as c:
        yield c


@pytest.fixture(scope="module")
def receiver() -> Iterator[LocalHTTPServer]:
    """A webhook receiver on 127.0.0.1 answering 200."""
    r = LocalHTTPServer()
    yield r
    r.close()
