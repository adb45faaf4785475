"""Run folders that are never half-written, never mixed, and never shared by two runs at once.

- :func:`claim` checks that ``--out`` can be written *before* any work, and holds a lock file in it for
  the whole run: a second run into the same folder fails at once (a lock left by a dead process is
  taken over).
- :func:`staged` builds one program's folder under a temporary name beside its target and swaps it in
  whole at the end; until then the previous run stays as it was, and on any error it is untouched and
  the temporary folder is removed. A rerun therefore never leaves stale files of the run it replaces.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator

from aekit.errors import DataError
from aekit.fileio import temporary_name

LOCK = ".aekit.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


def _take_lock(lock: Path) -> None:
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _alive(pid):
                raise DataError(f"{lock.parent}: another aekit run (pid {pid}) is writing into this folder; "
                                "wait for it to finish or choose another --out") from None
            lock.unlink(missing_ok=True)  # left by a run that died: take it over
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        return
    raise DataError(f"{lock}: could not take the run lock; remove the file if no aekit run is using {lock.parent}")


@contextlib.contextmanager
def claim(out: str | os.PathLike, option: str = "--out") -> Iterator[Path]:
    """Create ``out`` if needed, check it is a writable folder, and lock it for this process."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        _take_lock(out / LOCK)
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
            (out / LOCK).unlink()


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
    old = None
    if target.exists():
        print(f"replacing the previous run in {target}")
        old = target.with_name(temporary_name(target.name, "old"))
        os.replace(target, old)
    os.replace(temp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
