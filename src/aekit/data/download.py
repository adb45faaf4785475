"""Fetch a file from a list of mirrors, verify its checksum, write it atomically.

Nothing here runs at import time, and tests point the mirrors at a local server:
the code is real, the network is optional.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from aekit.errors import DataError
from aekit.fileio import atomic_path

CHUNK = 1 << 20


def md5_of(path: str | os.PathLike) -> str:
    """MD5 hex digest of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(url: str, dest: Path, md5: str, timeout: float = 30.0) -> None:
    """Download ``url`` to ``dest`` through ``dest.part``; raise DataError on a bad checksum."""
    h = hashlib.md5()
    with atomic_path(dest) as part:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(part, "wb") as out:
            for chunk in iter(lambda: resp.read(CHUNK), b""):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != md5:
            raise DataError(f"checksum mismatch for {url}: md5 {h.hexdigest()}, expected {md5}")


def fetch_from_mirrors(filename: str, md5: str, mirrors: tuple[str, ...], dest_dir: Path, timeout: float = 30.0) -> Path:
    """Try each mirror in turn; return the verified file's path or raise one DataError listing every failure."""
    dest = dest_dir / filename
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        try:
            fetch(url, dest, md5, timeout=timeout)
            return dest
        except DataError as e:
            failures.append(str(e))
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            failures.append(f"{url}: {reason}")
    raise DataError(f"could not download {filename}: " + "; ".join(failures))
