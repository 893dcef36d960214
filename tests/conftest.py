import time

import pytest

from batchsms.sandbox import ManualClock, Sandbox


@pytest.fixture(autouse=True)
def _no_machine_settings(monkeypatch, tmp_path_factory):
    """Tests never read the developer's config file, and times show in UTC whatever the machine's zone."""
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.delenv("BATCHSMS_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("no-config")))
    monkeypatch.setenv("BATCHSMS_STATE", str(tmp_path_factory.mktemp("state")))


@pytest.fixture
def sandbox():
    """A real sandbox API on a loopback port, no faults."""
    with Sandbox(port=0, seed=1) as server:
        yield server


@pytest.fixture
def clock():
    """The sandbox's clock, which the test moves (a module may define its own, started elsewhere)."""
    return ManualClock(time.time())


@pytest.fixture
def server(clock):
    """A real sandbox API on a loopback port whose time is ``clock``."""
    with Sandbox(port=0, seed=1, clock=clock) as s:
        yield s


@pytest.fixture
def make_sandbox():
    """Start sandboxes with options; all are stopped after the test."""
    servers = []

    def make(**kwargs):
        kwargs.setdefault("seed", 1)
        server = Sandbox(port=0, **kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
