"""The state folder (batchsms/state.py): where it is, the registry of journals, and run locks."""

import multiprocessing
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap

import pytest

from batchsms import state
from batchsms.errors import ConfigError


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- where it is


def test_the_state_folder_is_batchsms_state_made_private(tmp_path):
    folder = tmp_path / "deep" / "state"
    assert state.state_dir({"BATCHSMS_STATE": str(folder)}) == folder
    assert folder.is_dir() and mode(folder) == 0o700


def test_an_existing_folder_is_used_as_it_is(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    assert state.state_dir({"BATCHSMS_STATE": str(shared)}) == shared
    assert mode(shared) == 0o755  # a folder the user chose keeps its permissions


def test_the_default_is_the_platforms_user_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # where platformdirs looks on Linux
    if sys.platform.startswith("linux"):
        assert state.state_dir({}) == tmp_path / "data" / "batchsms"
        assert mode(tmp_path / "data" / "batchsms") == 0o700
    assert state.state_dir({"BATCHSMS_STATE": "  "}) == state.state_dir({})  # blank is unset


def test_a_file_is_no_state_folder(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("x")
    with pytest.raises(ConfigError) as caught:
        state.state_dir({"BATCHSMS_STATE": str(path)})
    assert str(caught.value) == (f"BATCHSMS_STATE={path}: {path} is a file, not a folder; set BATCHSMS_STATE to "
                                 "a folder")


def test_a_folder_that_cannot_be_made_says_so(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    if os.access(locked, os.W_OK):  # root writes anywhere
        pytest.skip("this user can write to a read-only folder")
    with pytest.raises(ConfigError, match="cannot create .*; set BATCHSMS_STATE to a folder you can write"):
        state.state_dir({"BATCHSMS_STATE": str(locked / "state")})


# --------------------------------------------------------------------------- the registry of journals


def journal(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def registered(folder):
    with sqlite3.connect(folder / state.REGISTRY_NAME) as db:
        return sorted(p for (p,) in db.execute("SELECT path FROM journals"))


def test_register_and_list(tmp_path):
    env = {"BATCHSMS_STATE": str(tmp_path / "state")}
    assert state.journals(env) == []  # nothing registered yet: no file needed
    first = journal(tmp_path / "a" / "contacts.results.csv.journal")
    second = journal(tmp_path / "b" / "daily.results.xlsx.journal")
    assert state.register(first, env) == first
    state.register(second, env)
    state.register(tmp_path / "a" / ".." / "a" / "contacts.results.csv.journal", env)  # the same file again
    assert state.journals(env) == [first, second]
    assert mode(tmp_path / "state") == 0o700


def test_relative_paths_are_registered_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    registry = state.Registry(tmp_path / "state")
    (tmp_path / "state").mkdir()
    journal(tmp_path / "x.journal")
    assert registry.register("x.journal") == tmp_path / "x.journal"
    assert registered(tmp_path / "state") == [str(tmp_path / "x.journal")]


def test_vanished_journals_are_forgotten_but_not_those_on_a_missing_drive(tmp_path):
    (tmp_path / "state").mkdir()
    registry = state.Registry(tmp_path / "state")
    kept = journal(tmp_path / "kept.journal")
    deleted = journal(tmp_path / "deleted.journal")
    unmounted = journal(tmp_path / "usb" / "held.journal")
    for path in (kept, deleted, unmounted):
        registry.register(path)
    deleted.unlink()
    (tmp_path / "usb").rename(tmp_path / "usb-away")  # as if the drive were not mounted
    assert registry.journals() == [kept]
    assert registered(tmp_path / "state") == sorted([str(kept), str(unmounted)])  # deleted: forgotten
    (tmp_path / "usb-away").rename(tmp_path / "usb")
    assert registry.journals() == [kept, unmounted]
    registry.forget(unmounted)
    assert registry.journals() == [kept]


def _register_many(folder, paths, barrier):
    barrier.wait()
    registry = state.Registry(folder)
    for path in paths:
        registry.register(path)


def test_processes_registering_at_once_lose_nothing(tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    common = journal(tmp_path / "common.journal")
    work = [[journal(tmp_path / f"p{n}" / f"{i}.journal") for i in range(25)] + [common] for n in range(4)]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(work))
    processes = [context.Process(target=_register_many, args=(folder, paths, barrier)) for paths in work]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    found = state.Registry(folder).journals()
    assert len(found) == 101 and set(found) == {path for paths in work for path in paths}


def test_a_broken_registry_says_what_to_do(tmp_path):
    (tmp_path / state.REGISTRY_NAME).write_bytes(b"not a database at all" * 100)
    with pytest.raises(ConfigError, match="the registry of journals cannot be used .*; move it away"):
        state.Registry(tmp_path).register(journal(tmp_path / "x.journal"))


# --------------------------------------------------------------------------- run locks


def test_a_lock_held_twice_is_refused_naming_the_holder(tmp_path):
    env = {"BATCHSMS_STATE": str(tmp_path)}
    with state.run_lock("due", env=env) as path:
        assert path == tmp_path / "due.lock"
        assert path.read_text() == f"{os.getpid()}\n"
        with pytest.raises(state.RunLocked) as caught, state.run_lock("due", env=env):
            pass
        assert caught.value.pid == os.getpid()
        assert str(caught.value) == (
            f"another `batchsms due` is running (pid {os.getpid()}); it holds {path}. Wait for it to finish, "
            "or stop it; this run did nothing")
        with state.run_lock("watch", env=env):  # another name is another lock
            pass
    with state.run_lock("due", env=env):  # released: free again
        pass


def test_a_lock_in_another_folder_names_the_command(tmp_path):
    with state.run_lock("watch", folder=tmp_path), pytest.raises(
            state.RunLocked, match=r"^another `batchsms watch inbox` is running \(pid \d+\)"), \
            state.run_lock("watch", folder=tmp_path, what="batchsms watch inbox"):
        pass


def test_lock_names_are_file_names():
    with pytest.raises(ValueError, match="letters, digits"), state.run_lock("../due"):
        pass


def test_a_lock_dies_with_its_process(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from pathlib import Path
            from batchsms import state
            with state.run_lock("due", folder=Path({str(tmp_path)!r})):
                print("locked", flush=True)
                sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(state.RunLocked) as caught, state.run_lock("due", folder=tmp_path):
            pass
        assert caught.value.pid == holder.pid
    finally:
        holder.kill()  # no clean exit: the operating system releases the lock
        holder.wait(10)
    with state.run_lock("due", folder=tmp_path):
        pass
