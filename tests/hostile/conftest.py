"""The hostile review of the scheduling and after-send code (issues #11, #12): each test here failed on the
code it was written against, and guards the fix. A sandbox on a clock the test moves."""

import time

import pytest

from batchsms.sandbox import ManualClock, Sandbox


@pytest.fixture
def clock():
    return ManualClock(time.time())


@pytest.fixture
def server(clock):
    with Sandbox(port=0, seed=1, clock=clock) as s:
        yield s
