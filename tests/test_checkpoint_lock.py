"""One writer per checkpoint folder (xbackprop/checkpoint/lock.py, issue 20 class 1), with real
processes: a second writer is refused naming the first, a writer killed with SIGKILL leaves
no lock (its run resumes at once), readers never block, delete or rename anything, even
while a run writes, and only the lock's holder removes stale temporaries."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.atomic import TMP_SUFFIX
from xbackprop.checkpoint import FolderInUseError, FolderLock
from xbackprop.checkpoint.lock import LOCK_NAME

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no flock on Windows: the "
                                "folder is not locked there (lock.py)")

X = np.random.default_rng(0).normal(size=(24, 3)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int64)
MODEL = xb.Sequential([xb.Dense(2)])


def quiet_fit(folder: Path, **kwargs):
    options = dict(loss="cross_entropy", optimizer="sgd", batch_size=8, progress=False,
                   backend="numpy", checkpoint_dir=folder) | kwargs
    return xb.fit(MODEL, X, Y, **options)


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "XBACKPROP_BACKEND"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]),
                                         env.get("PYTHONPATH", "")])
    return env


def command(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`xbackprop ARGS` in a new process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "xbackprop", *args], capture_output=True,
                          text=True, env=environment(), timeout=timeout)


def start(code: str, *args: str) -> subprocess.Popen:
    """A Python process running `code`, its stdin and stdout piped."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=environment())


def wait_for(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


HOLDER = """
    import sys
    from xbackprop.checkpoint import FolderLock
    with FolderLock(sys.argv[1]):
        print("held", flush=True)
        sys.stdin.read()  # until the test closes stdin
"""


@pytest.fixture
def holder(tmp_path):
    """A process that holds the lock of tmp_path/run, holding a checkpoint of step 3 and
    a stale temporary of a killed save; released when the test ends."""
    folder = tmp_path / "run"
    quiet_fit(folder, epochs=1)  # ckpt-000000003
    stale = folder / f".ckpt-000000006.safetensors.x1y2{TMP_SUFFIX}"
    process = start(HOLDER, str(folder))
    assert process.stdout.readline().strip() == "held", process.stderr.read()
    stale.write_bytes(b"half a checkpoint")  # a save killed midway, before this writer
    yield folder, process, stale
    if not process.stdin.closed:
        process.stdin.close()
    process.wait(timeout=30)
    process.stdout.close()
    process.stderr.close()


def test_a_second_writer_is_refused_naming_the_first(holder):
    folder, process, _ = holder
    named = rf"process {process.pid}, since \S+ \(-c {re.escape(str(folder))}\)"
    done = command("train", "xor", "--checkpoint", str(folder), "--resume", "--epochs", "9",
                   "--quiet")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert re.fullmatch(rf"xbackprop: error: the checkpoint folder {re.escape(str(folder))} "
                        rf"is being written by another run: {named}\. A folder has one "
                        r"writer: wait for that run to end \(or stop it\), or give this run a "
                        r"folder of its own\. Reading its checkpoints \(load_checkpoint, "
                        r"checkpoint_info, xbackprop predict\) needs no lock\.\n",
                        done.stderr), done.stderr
    assert "resume=True" not in done.stderr and done.stdout == ""  # refused before any work
    with pytest.raises(FolderInUseError, match=named) as info:
        quiet_fit(folder, epochs=3, resume=True)
    assert info.value.holder["pid"] == process.pid
    with pytest.raises(FolderInUseError, match=named):
        xb.CheckpointManager(folder).save(xb.load_checkpoint(folder / "ckpt-000000003"
                                                             ".safetensors").state)


def test_readers_do_not_wait_delete_or_rename_while_a_writer_holds_the_folder(holder):
    folder, _, stale = holder
    before = sorted(p.name for p in folder.iterdir())
    t0 = time.monotonic()
    manager = xb.CheckpointManager(folder, monitor="loss")
    assert manager.latest().name == "ckpt-000000003.safetensors"
    assert manager.load_latest().step == 3 and manager.best() is not None
    assert xb.checkpoint_info(manager.latest()).step == 3
    assert xb.load_model(manager.latest()).model is not None
    assert time.monotonic() - t0 < 10  # nobody waited for the lock
    assert sorted(p.name for p in folder.iterdir()) == before and stale.exists()


def test_the_next_writer_removes_stale_temporaries_and_nothing_else(holder, tmp_path):
    folder, process, stale = holder
    foreign = folder / f".notes.txt.x1y2{TMP_SUFFIX}"
    foreign.write_text("someone else's")
    process.stdin.close()
    assert process.wait(timeout=30) == 0
    quiet_fit(folder, epochs=2, resume=True)
    assert not stale.exists() and foreign.exists()
    assert xb.CheckpointManager(folder).latest().name == "ckpt-000000006.safetensors"


def test_a_run_killed_with_sigkill_resumes_at_once(tmp_path):
    """`kill -9` mid-run (mid-save, most likely: xor saves every step): the kernel drops the
    lock with the process, so the next run on the folder starts at once, resumes from the
    newest whole checkpoint and clears what the killed save left."""
    folder = tmp_path / "xor"
    run = subprocess.Popen([sys.executable, "-m", "xbackprop", "train", "xor", "--checkpoint",
                            str(folder), "--epochs", "100000", "--quiet"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           env=environment())
    try:
        manager = xb.CheckpointManager(folder)
        wait_for(lambda: len(manager.checkpoints()) >= 3 or run.poll() is not None)
        assert run.poll() is None, run.stderr.read()
    finally:
        run.send_signal(signal.SIGKILL)
        run.communicate(timeout=30)
    assert run.returncode == -signal.SIGKILL
    step = xb.checkpoint_info(manager.latest()).step
    t0 = time.monotonic()
    done = command("train", "xor", "--checkpoint", str(folder), "--resume", "--epochs",
                   str(step + 5), "--quiet")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - t0 < 60
    assert f"resuming from {folder}/ckpt-{step:09d}.safetensors: epoch {step} (step " \
           f"{step}), to epoch {step + 5}" in done.stdout, done.stdout
    assert manager.latest().name == f"ckpt-{step + 5:09d}.safetensors"
    assert not [p.name for p in folder.iterdir() if p.name.endswith(TMP_SUFFIX)]


WRITER = """
    import sys
    import numpy as np
    import xbackprop as xb
    manager = xb.CheckpointManager(sys.argv[1], keep=2, monitor=None)
    params = [{"W": np.zeros((256, 256), np.float32)}]
    with manager:  # one writer, for the whole loop
        print("writing", flush=True)
        for step in range(1, 151):
            params[0]["W"] += 1
            manager.save(xb.TrainState(params, None, None, step, xb.random.make_key(0)))
    print("done", flush=True)
"""


@pytest.mark.filterwarnings("error::UserWarning")  # a file skipped as unreadable would warn
def test_a_reader_during_writes_never_breaks_them(tmp_path):
    """A process saves 150 checkpoints (256 kB each), keeping the newest 2; meanwhile this
    process loads the newest one again and again. Every load gives a whole checkpoint (or
    passes over one rotated away meanwhile); the writer ends cleanly with its files."""
    folder = tmp_path / "busy"
    writer = start(WRITER, str(folder))
    assert writer.stdout.readline().strip() == "writing", writer.stderr.read()
    manager, loads, refused = xb.CheckpointManager(folder), 0, 0
    while writer.poll() is None:
        found = manager.load_latest()
        if found is not None:
            W = found.state.params[0]["W"]
            assert (W == found.step).all()  # a whole file of one step, never a mixture
            loads += 1
        try:
            with FolderLock(folder):  # only once the writer's loop is over
                assert manager.latest().name == "ckpt-000000150.safetensors"
        except FolderInUseError:
            refused += 1
    out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0 and out.strip() == "done", err
    assert loads >= 1 and refused >= 1, (loads, refused)
    names = sorted(p.name for p in folder.iterdir())
    assert names == [LOCK_NAME, "ckpt-000000149.safetensors", "ckpt-000000150.safetensors"]


def test_the_lock_is_one_per_process_and_folder(tmp_path):
    """Within a process the lock is re-entrant (fit inside `with manager:` is one writer), by
    the folder's identity (a symbolic link to it is the same folder), and threads share it."""
    folder = tmp_path / "run"
    link = tmp_path / "link"
    with xb.CheckpointManager(folder) as manager:
        link.symlink_to(folder)
        with FolderLock(link):
            quiet_fit(folder, epochs=1)
        assert manager.lock.held
        shared = []

        def writer() -> None:
            with FolderLock(folder) as lock:
                shared.append(lock.held)

        thread = threading.Thread(target=writer)
        thread.start()
        thread.join()
        assert shared == [True]
    assert (folder / LOCK_NAME).read_text() == ""  # says nothing once released
