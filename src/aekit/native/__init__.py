"""Small C kernels for the CPU, compiled on first use with the machine's C compiler and loaded with ctypes.

A kernel here is an optimisation, never a requirement: where no compiler is found, the compile fails, the
cache cannot be written, or ``AEKIT_NATIVE=0`` is set, :func:`load` returns None and the caller runs its
PyTorch path, which the tests hold the kernel to. Nothing is compiled at import; the first :func:`load` of a
kernel compiles it once into the cache (``$AEKIT_CACHE/native``, else ``$XDG_CACHE_HOME/aekit/native``, else
``~/.cache/aekit/native``; a temporary folder where none of those can be written), under a name keyed by the
source, the compiler and its version, its flags and the CPU, so a cache shared by different machines never
hands one machine's build to another. Writes are atomic (a temporary file, then a rename), so concurrent
ranks under torchrun each compile or find the finished file, never a half-written one.

The kernels use OpenMP only where that adds no second runtime: with GCC on Linux, when PyTorch runs its own
``libgomp.so.1`` (the loader then reuses it, so the kernels run on PyTorch's threads and honour
``torch.set_num_threads``). Elsewhere they compile without it and run on one thread. ``-march=native`` is used
only on Linux, where the CPU's model and feature flags are part of the cache key.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BASE_FLAGS = ("-O3", "-fno-math-errno")

# Each kernel's C functions: name -> (return type, argument types), set on the library when it loads.
_p, _i64, _f = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
SIGNATURES: dict[str, dict[str, tuple]] = {
    "rmsprop_tf1": {"rmsprop_tf1": (None, [ctypes.c_int, _p, _p, _p, _p, _p, _f, _f, _f, _f])},
    "mse": {"squared_error_sum": (ctypes.c_double, [_i64, _p, _p]),
            "sigmoid_mse_backward": (None, [_i64, _p, _p, _f, _p])},
    "gather": {"gather_scaled_u8": (_i64, [_i64, _i64, _p, _i64, _p, _f, _p])},
    "sigmoid": {"bias_sigmoid": (None, [_i64, _i64, _p, _p]),
                "sigmoid_backward_bias": (None, [_i64, _i64, _p, _p, _p, _p]),
                "sigmoid_mse_forward": (ctypes.c_double, [_i64, _i64, _p, _p, _p, _f, _p, _p, _p]),
                "softmax_cross_entropy": (ctypes.c_double, [_i64, _i64, _p, _p, _f, _p, _p]),
                "mlp_forward": (ctypes.c_double, [ctypes.c_int, _i64, _p, _p, _p, _p, _p, ctypes.c_int, _p, _f, _p,
                                                  _p, _p, _p]),
                "mlp_backward": (None, [ctypes.c_int, _i64, _p, _p, _p, _p, _p, _p, _p, _p, _p])},
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


def cache_dirs() -> list[Path]:
    """Where kernels are kept, in order of preference (see the module docstring)."""
    dirs = []
    if os.environ.get("AEKIT_CACHE"):
        dirs.append(Path(os.environ["AEKIT_CACHE"]) / "native")
    else:
        with contextlib.suppress(RuntimeError, KeyError):  # no HOME and no passwd entry
            base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
            dirs.append(Path(base) / "aekit" / "native")
    dirs.append(Path(tempfile.gettempdir()) / f"aekit-{os.getuid() if hasattr(os, 'getuid') else 'user'}" / "native")
    return dirs


def compiler() -> list[str] | None:
    """``$CC`` (split as a shell would: ``ccache gcc`` works), else the first of cc, gcc, clang on the PATH."""
    if os.environ.get("CC"):
        return shlex.split(os.environ["CC"])
    found = next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
    return None if found is None else [found]


@functools.lru_cache(maxsize=None)
def _version(cc: tuple[str, ...]) -> str:
    try:
        return subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_key() -> str:
    """What -march=native depends on: the CPU's model and feature flags (Linux only; elsewhere it is not used)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return ""
    return "\n".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags", "Features"))}))


def _torch_libgomp() -> bool:
    """Whether this process has PyTorch's OpenMP runtime loaded as ``libgomp.so.1`` (what GCC's -fopenmp asks for)."""
    try:
        with open(f"/proc/{os.getpid()}/maps") as f:
            return any(line.rstrip().endswith("/libgomp.so.1") for line in f)
    except OSError:
        return False


def flags(cc: list[str]) -> tuple[str, ...]:
    """The flags for this machine: OpenMP and -march=native only where the module docstring allows them."""
    version = _version(tuple(cc)).lower()
    gcc = "clang" not in version and ("gcc" in version or "free software foundation" in version)
    if not (sys.platform.startswith("linux") and gcc):
        return BASE_FLAGS
    return (*BASE_FLAGS, "-march=native", *(("-fopenmp",) if _torch_libgomp() else ()))


def _build(source: Path, cc: list[str], opts: tuple[str, ...], out: Path) -> bool:
    """Compile ``source`` into the shared library ``out`` (atomically); False if it could not be done."""
    tmp = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
        os.close(fd)
        done = subprocess.run([*cc, *opts, "-shared", "-fPIC", "-o", tmp, str(source)],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            return False
        os.replace(tmp, out)
        return True
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def sgemm() -> int | None:
    """The address of the BLAS ``sgemm_`` (Fortran interface) that PyTorch's own CPU library exports and its
    ``torch.mm`` calls (Intel MKL in the x86-64 wheels), for kernels that run a whole pass of matmuls in one call;
    None where the kernels are off, PyTorch exports none, or it fails the check of :func:`_sgemm_agrees`."""
    return _sgemm() if enabled() else None


@functools.lru_cache(maxsize=None)
def _sgemm() -> int | None:
    import torch

    folder = Path(torch.__file__).parent / "lib"
    for name in ("libtorch_cpu.so", "libtorch_cpu.dylib"):
        if not (folder / name).is_file():
            continue
        try:
            function = ctypes.CDLL(str(folder / name)).sgemm_  # already loaded by torch: this only finds it
        except (OSError, AttributeError):
            continue
        address = ctypes.cast(function, ctypes.c_void_p).value
        return address if address and _sgemm_agrees(address) else None
    return None


def _sgemm_agrees(address: int) -> bool:
    """Whether ``sgemm_`` at ``address`` multiplies as the BLAS interface with 32-bit integers says: a (5, 7) @ (7, 3)
    product through it against Python's own, on ctypes arrays (no tensors, so that it holds wherever it is first
    asked, under torch.func transforms too). Each integer argument is followed in memory by -1, so an interface
    that reads 64-bit integers sees negative sizes, which BLAS refuses without writing: the check then fails."""
    m, n, k = 5, 3, 7
    a = [((i * 7 + j * 3) % 11) / 11.0 for i in range(m) for j in range(k)]  # row-major (m, k)
    b = [((i * 5 + j * 2) % 13) / 13.0 - 0.5 for i in range(k) for j in range(n)]  # row-major (k, n)
    want = [sum(a[i * k + t] * b[t * n + j] for t in range(k)) for i in range(m) for j in range(n)]
    arr_a, arr_b = (ctypes.c_float * len(a))(*a), (ctypes.c_float * len(b))(*b)
    arr_c = (ctypes.c_float * (m * n))(*([float("nan")] * (m * n)))
    ints = (ctypes.c_int * 8)(m, -1, n, -1, k, -1, 0, 0)  # each followed by a sentinel (see above)
    cm, cn, ck = (ctypes.byref(ints, 4 * i) for i in (0, 2, 4))
    one, zero = ctypes.c_float(1.0), ctypes.c_float(0.0)
    call = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 13)(address)
    # row-major c = a @ b is column-major c^T = b^T a^T
    call(b"N", b"N", cn, cm, ck, ctypes.byref(one), arr_b, cn, arr_a, ck, ctypes.byref(zero), arr_c, cn)
    return all(abs(got - w) <= 1e-5 * (1.0 + abs(w)) for got, w in zip(arr_c, want))


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
    opts = flags(cc)
    key = hashlib.sha256(b"\0".join(
        [source.read_bytes(), " ".join(cc).encode(), _version(tuple(cc)).encode(), " ".join(opts).encode(),
         _cpu_key().encode() if "-march=native" in opts else b"", sys.platform.encode()])).hexdigest()[:16]
    for folder in cache_dirs():
        lib = folder / f"{name}-{key}.so"
        try:
            ready = lib.is_file() or _build(source, cc, opts, lib)
        except OSError:  # a folder that cannot even be looked at
            ready = False
        if not ready:
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
