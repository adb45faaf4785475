"""Atomic file writes: a reader never sees a half-written file.

Every writer goes to a temporary ``.<name>.<pid>.<random>.part`` in the same directory (unique per
process, so two writers never share one), flushes, then renames; on any error the temporary file is
removed and the destination is left untouched. Every file gets the mode a plain ``open`` would give it
(0666 less the umask), whatever wrote the temporary file. JSON is always strict: no NaN or Infinity tokens.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from pathlib import Path
from typing import IO, Any, Iterator

from aekit.errors import DataError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot write {path}: cannot create its folder ({e.strerror or e}); "
                        "choose a folder you can write to") from None
    part = path.with_name(temporary_name(path.name, "part"))
    try:
        yield part
        os.chmod(part, 0o666 & ~_umask())  # as open() would: some writers create their files 0600
        os.replace(part, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open ``path`` for writing so that it appears complete or not at all."""
    check_destination(path)
    with atomic_path(path) as part:
        try:
            f = open(part, mode)
        except OSError as e:
            raise DataError(f"cannot write {path} ({e.strerror or e}); choose a folder you can write to") from None
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def check_destination(path: str | os.PathLike) -> None:
    """Raise DataError, before any work, where ``path`` cannot become a file: it is a folder, or a file stands
    where its folder would be."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is an existing folder; give the path of a file to write instead")
    check_parent_writable(path, f"cannot write {path}")


def check_parent_writable(path: Path, what: str) -> None:
    """Raise DataError (``what``: the user's path) unless the nearest existing folder above ``path`` is a folder
    in which files can be created."""
    parent = next((p for p in path.parents if p.exists()), Path("."))
    if not parent.is_dir():
        raise DataError(f"{what}: {parent} is a file, not a folder; choose another path")
    check_writable(parent, what)


def check_writable(folder: Path, what: str) -> None:
    """Raise DataError (``what``: the user's path) unless a file can be created in ``folder``: tried, not guessed
    from mode bits, which say nothing of read-only mounts, /proc, or root without its capabilities."""
    probe = folder / temporary_name("write-check", "probe")
    try:
        probe.touch(exist_ok=False)
    except OSError as e:
        raise DataError(f"{what}: cannot create files in {folder} ({e.strerror or e}); "
                        "choose a folder you can write to") from None
    probe.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temporary_name(name: str, kind: str) -> str:
    """``.<name>.<pid>.<random>.<kind>``: hidden, and unique to this process and call."""
    return f".{name}.{os.getpid()}.{secrets.token_hex(4)}.{kind}"


def strict_json(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None, so that the JSON is valid for every reader."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, strict JSON (non-finite numbers become null), atomically."""
    text = json.dumps(strict_json(obj), indent=2, sort_keys=False, allow_nan=False)
    with atomic_open(path, "w") as f:
        f.write(text + "\n")
