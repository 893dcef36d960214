"""The hostile review of the scheduling and after-send code (issues #11, #12): each test here failed on the
code it was written against, and guards the fix. Their sandbox runs on a clock the test moves (the
``server`` and ``clock`` fixtures of tests/conftest.py)."""
