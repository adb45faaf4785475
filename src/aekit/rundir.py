"""Run folders that are never half-written, never mixed, and never shared by two runs at once.

- :func:`claim` checks that ``--out`` can be written *before* any work, and holds a lock on a file in
  it for the whole run (``flock``, which the kernel releases when a process dies): a second run into
  the same folder fails at once. POSIX only (``fcntl``).
- :func:`staged` builds one program's folder under a temporary name beside its target and swaps it in
  whole at the end; until then the previous run stays as it was, and on any error it is untouched and
  the temporary folder is removed. A rerun therefore never leaves stale files of the run it replaces,
  and a folder that is not an earlier run (:func:`check_replaceable`) is never replaced.
- :func:`partial` is the same idea for a run that can be resumed: its folder keeps the training state
  through a crash and is swapped in (:func:`swap_in`) when the run completes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from pathlib import Path
from typing import Iterator

from aekit.errors import DataError
from aekit.fileio import temporary_name

LOCK = ".aekit.lock"


def _take_lock(lock: Path, busy: str | None = None) -> int:
    """An open descriptor holding an exclusive ``flock`` on ``lock`` (the kernel frees it if the process dies,
    so no lock is ever stale); the file names the holder's pid for the message a second run gets (``busy``,
    with ``{pid}`` in it)."""
    busy = busy or (f"{lock.parent}: another aekit run (pid {{pid}}) is writing into this folder; "
                    "wait for it to finish or choose another --out")
    while True:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataError(busy.format(pid=holder)) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino  # not a file its last holder removed meanwhile
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


@contextlib.contextmanager
def claim(out: str | os.PathLike, option: str = "--out") -> Iterator[Path]:
    """Create ``out`` if needed, check it is a writable folder, and lock it for this run (a second claim of
    the same folder fails at once, from another process or this one)."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = _take_lock(out / LOCK)
    except DataError:
        raise
    except FileExistsError:
        raise DataError(f"{option} {out}: is a file, not a folder; choose a folder for the run's results") from None
    except NotADirectoryError:
        raise DataError(f"{option} {out}: a part of this path is a file, not a folder; choose another path") from None
    except OSError as e:
        raise DataError(f"{option} {out}: cannot write there ({e.strerror}); choose a folder you can write to") from None
    try:
        yield out
    finally:
        with contextlib.suppress(OSError):
            (out / LOCK).unlink()  # while still holding it: no other run holds this file
        os.close(fd)


@contextlib.contextmanager
def locked_beside(target: str | os.PathLike, option: str) -> Iterator[None]:
    """Hold a lock on ``.NAME.lock`` beside ``target`` (a folder that is replaced whole, so the lock cannot live
    inside it): a second writer of the same ``target`` fails at once. The parent folder is created if needed."""
    target = Path(target)
    lock = target.with_name(f".{target.name}.lock")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = _take_lock(lock, f"{option} {target}: another aekit process (pid {{pid}}) is writing it; "
                              f"wait for it to finish or choose another {option}")
    except DataError:
        raise
    except (FileExistsError, NotADirectoryError):
        raise DataError(f"{option} {target}: a part of this path is a file, not a folder; choose another path") from None
    except OSError as e:
        raise DataError(f"{option} {target}: cannot write there ({e.strerror}); choose a folder you can write to") from None
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(fd)


RUN_FILES = ("metrics.json", "config.json")  # what marks a folder as an aekit run's


def check_replaceable(target: str | os.PathLike) -> None:
    """Refuse, before any work, to replace something that is not an earlier aekit run: a file, or a folder of
    the user's own that happens to have the program's name."""
    target = Path(target)
    if not target.exists():
        return
    if not target.is_dir():
        raise DataError(f"{target}: is a file; the run would replace it with its results folder; "
                        "move it or choose another --out")
    if any(target.iterdir()) and not any((target / name).is_file() for name in RUN_FILES):
        raise DataError(f"{target}: holds files that are not an aekit run (no {' or '.join(RUN_FILES)}); aekit "
                        "replaces the whole folder, so move them or choose another --out")


@contextlib.contextmanager
def staged(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; on success it replaces ``target`` whole."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(temporary_name(target.name, "tmp"))
    temp.mkdir()
    try:
        yield temp
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    swap_in(temp, target)


def partial(out: str | os.PathLike, program: str) -> Path:
    """Where a program's run is built, and its resumable state kept, until it completes: ``OUT/.PROGRAM.partial``.
    Unlike :func:`staged`'s folder it outlives a crash, so ``--resume`` finds it."""
    return Path(out) / f".{program}.partial"


def swap_in(folder: Path, target: Path) -> None:
    """Make the complete ``folder`` become ``target``, replacing an earlier run there; on failure the earlier
    run is put back and ``folder`` removed."""
    old = None
    try:
        check_replaceable(target)  # checked before any work by the caller; again, as the folder may have changed
        if target.exists():
            print(f"replacing the previous run in {target}")
            old = target.with_name(temporary_name(target.name, "old"))
            os.replace(target, old)
        os.replace(folder, target)
    except BaseException:  # put the previous run back, drop the new one
        if old is not None and not target.exists():
            os.replace(old, target)
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
