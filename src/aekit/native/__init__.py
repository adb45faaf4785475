"""Small C kernels for the CPU, compiled on first use with the machine's C compiler and loaded with ctypes.

A kernel here is an optimisation, never a requirement: where no compiler is found, the compile fails, or
``AEKIT_NATIVE=0`` is set, :func:`load` returns None and the caller runs its PyTorch path, which the tests
hold the kernel to. Nothing is compiled at import; the first :func:`load` of a kernel compiles it once into
the cache (``$AEKIT_CACHE``, else ``$XDG_CACHE_HOME/aekit``, else ``~/.cache/aekit``), under a name keyed by the
source, the compiler, its flags and the CPU, so a cache shared by different machines never hands one
machine's build to another. Writes are atomic (a temporary file, then a rename), so concurrent ranks under
torchrun each compile or find the finished file, never a half-written one.

The kernels use OpenMP; PyTorch's CPU build loads its own ``libgomp.so.1`` first, and the dynamic loader
reuses it for a kernel that asks for that soname, so the kernels run on PyTorch's threads and honour
``torch.set_num_threads``.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

# Tried in order; the first that compiles and loads wins (OpenMP and -march=native are not everywhere).
FLAG_SETS = (
    ("-O3", "-march=native", "-fno-math-errno", "-fopenmp"),
    ("-O3", "-fno-math-errno", "-fopenmp"),
    ("-O3", "-fno-math-errno"),
)


# Each kernel's C functions: name -> (return type, argument types), set on the library when it loads.
_p, _i64, _f = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
SIGNATURES: dict[str, dict[str, tuple]] = {
    "rmsprop_tf1": {"rmsprop_tf1": (None, [ctypes.c_int, _p, _p, _p, _p, _p, _f, _f, _f, _f])},
    "mse": {"squared_error_sum": (ctypes.c_double, [_i64, _p, _p]),
            "sigmoid_mse_backward": (None, [_i64, _p, _p, _f, _p])},
}


_off = 0  # depth of turned_off() blocks


def enabled() -> bool:
    """False inside :func:`turned_off`, or when ``AEKIT_NATIVE`` is ``0`` (or ``false``/``no``/``off``): every
    caller then runs PyTorch ops."""
    return not _off and os.environ.get("AEKIT_NATIVE", "1").strip().lower() not in ("0", "false", "no", "off")


@contextlib.contextmanager
def turned_off():
    """Within the block, :func:`load` returns None: the kernels' callers run their PyTorch paths (for an A/B)."""
    global _off
    _off += 1
    try:
        yield
    finally:
        _off -= 1


def cache_dir() -> Path:
    if os.environ.get("AEKIT_CACHE"):
        return Path(os.environ["AEKIT_CACHE"]) / "native"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aekit" / "native"


def compiler() -> str | None:
    """``$CC``, else the first of cc, gcc, clang on the PATH; None if there is none."""
    if os.environ.get("CC"):
        return os.environ["CC"]
    return next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)


def _cpu_key() -> str:
    """What -march=native depends on: the CPU's model and feature flags (Linux), else the platform."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "\n".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags", "Features"))}))
    except OSError:
        return f"{platform.machine()} {platform.processor()}"


def _build(source: Path, cc: str, flags: tuple[str, ...], out: Path) -> bool:
    """Compile ``source`` into the shared library ``out`` (atomically); False if the compiler refused."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        done = subprocess.run([cc, *flags, "-shared", "-fPIC", "-o", tmp, str(source)],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            return False
        os.replace(tmp, out)
        return True
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load(name: str) -> ctypes.CDLL | None:
    """The kernel ``<name>.c`` of this package as a loaded library, or None where it cannot be had (see the
    module docstring). Compiles at most once per machine, and is asked at most once per process."""
    return _load(name) if enabled() else None


@functools.lru_cache(maxsize=None)
def _load(name: str) -> ctypes.CDLL | None:
    source = Path(__file__).with_name(f"{name}.c")
    cc = compiler()
    if cc is None or not source.is_file():
        return None
    text = source.read_bytes()
    for flags in FLAG_SETS:
        key = hashlib.sha256(b"\0".join([text, cc.encode(), " ".join(flags).encode(), _cpu_key().encode(),
                                         platform.platform().encode()])).hexdigest()[:16]
        lib = cache_dir() / f"{name}-{key}.so"
        if not lib.is_file() and not _build(source, cc, flags, lib):
            continue
        try:
            library = ctypes.CDLL(str(lib))
        except OSError:
            continue
        for function, (restype, argtypes) in SIGNATURES.get(name, {}).items():
            getattr(library, function).restype = restype
            getattr(library, function).argtypes = argtypes
        return library
    return None
