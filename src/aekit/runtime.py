"""Device, threads, floating-point mode and seeds: the settings a run needs before its first op.

Nothing here runs at import time; :func:`setup` is called by the programs and the CLI.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from aekit.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")


def select_device(name: str | None = "auto") -> torch.device:
    """``auto`` picks cuda when present, else cpu; an explicit name must be available."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind = name.split(":")[0]
    if kind not in DEVICES:
        raise ConfigError(f"--device {name!r} is not a device; allowed: {', '.join(DEVICES)} (cuda:N for a given GPU)")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name!r}: CUDA is not available on this machine; use --device cpu or auto")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {name!r}: MPS is not available on this machine; use --device cpu or auto")
    return torch.device(name)


@dataclass(frozen=True)
class World:
    """This process's place among the processes ``torchrun`` started (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.size > 1:
            import torch.distributed as dist
            dist.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if self.size == 1:
            return obj
        import torch.distributed as dist
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list:
        """``obj`` from every rank, in rank order (a picklable object; one collective)."""
        if self.size == 1:
            return [obj]
        import torch.distributed as dist
        out = [None] * self.size
        dist.all_gather_object(out, obj)
        return out


def world() -> World:
    """The running process group's World, or a single process's."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)),
                 int(os.environ.get("LOCAL_WORLD_SIZE", 1)))


def launched_world() -> World:
    """What ``torchrun`` asked for in the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ...)."""
    try:
        return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                     int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    except ValueError:
        raise ConfigError("RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE must be integers; "
                          "start data-parallel runs with torchrun") from None


@contextlib.contextmanager
def distributed(device_name: str | None = "auto") -> Iterator[tuple[torch.device, World]]:
    """The device for this process, inside torchrun's process group when torchrun started several processes.

    One process: just :func:`select_device`. Under ``torchrun --nproc-per-node N``: rank ``r`` takes
    ``cuda:LOCAL_RANK`` (NCCL) when CUDA is there, else the CPU (gloo); the group is destroyed at the end.
    Ranks other than 0 print nothing on stdout (errors still reach stderr)."""
    w = launched_world()
    if w.size == 1:
        yield select_device(device_name), w
        return
    import torch.distributed as dist
    name = (device_name or "auto").lower()
    if name in ("auto", "cuda") and torch.cuda.is_available():
        device = torch.device("cuda", w.local_rank)
        torch.cuda.set_device(device)
    elif name in ("auto", "cpu"):
        device = torch.device("cpu")
    else:
        raise ConfigError(f"--device {name!r} under torchrun: use auto, cpu or cuda (each process takes "
                          "cuda:LOCAL_RANK)")
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
    if missing:  # WORLD_SIZE alone is often a stray variable of a cluster job, not torchrun's
        raise ConfigError(f"WORLD_SIZE={w.size} asks for {w.size} processes, but {' and '.join(missing)} "
                          f"{'is' if len(missing) == 1 else 'are'} not set; start the command with torchrun "
                          "(torchrun --standalone --nproc-per-node N -m aekit ...), or unset WORLD_SIZE to run one process")
    if w.is_main and not os.environ.get("TORCHELASTIC_RUN_ID"):  # not torchrun: the others may never come
        print(f"waiting for the other {w.size - 1} process(es) at {os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} "
              "(WORLD_SIZE is set; start with torchrun, or unset WORLD_SIZE to run one process)", file=sys.stderr)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    stdout = sys.stdout
    if not w.is_main:
        sys.stdout = open(os.devnull, "w")
    try:
        yield device, world()
    finally:
        if not w.is_main:
            sys.stdout.close()
            sys.stdout = stdout
        dist.destroy_process_group()


def available_cpus() -> int:
    """CPUs this process may use: the affinity mask, capped by a cgroup v2 quota (containers)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        n = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            n = min(n, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def hardware_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bf16 matrices in hardware: a CUDA GPU that supports bf16, or a CPU with AMX
    or AVX512-BF16 (read from /proc/cpuinfo; where that cannot be read, False) that oneDNN is allowed to use
    (``ONEDNN_MAX_CPU_ISA`` can cap it below them). On other CPUs bf16 autocast emulates the products and trains
    far slower than fp32."""
    if device.type == "cuda":  # Ampere (8.0) and later; older GPUs emulate bf16 (torch's is_bf16_supported says yes)
        return torch.cuda.is_available() and torch.cuda.get_device_capability(device) >= (8, 0)
    if device.type != "cpu":
        return False
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").upper()  # DNNL_: its old name
    return bool(_cpu_flags() & {"amx_bf16", "avx512_bf16"}) and cap not in NO_BF16_ISAS


# oneDNN's ISA names (ONEDNN_MAX_CPU_ISA) whose instructions have no bf16 products.
NO_BF16_ISAS = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"})


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    return frozenset(flag for line in text.splitlines() if line.startswith("flags")
                     for flag in line.split(":", 1)[1].split())


def setup(device: torch.device, threads: int | None = None) -> None:
    """Set flush-to-zero and the thread count. Call before the first parallel op.

    Saturated sigmoids give denormal gradients, and x86 CPUs handle denormals in
    microcode: one step of the seed autoencoder measured 32 ms instead of 9.6 ms. Worker
    threads inherit the FP mode of the thread that creates them, hence "before". The one place aekit sets
    the FP mode: the commands (``reproduce``, ``train``, ``fewlabels``) and the estimators call it; code that calls
    ``fit`` or the programs directly calls it first.
    """
    torch.set_flush_denormal(True)
    if device.type == "cpu":
        n = threads or max(1, available_cpus() // launched_world().local_size)  # torchrun's ranks share the CPUs
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


SMALL_STEP_FLOPS = 50e6  # a training step below this runs on one CPU thread (see threads_for_step)


def step_flops(model: torch.nn.Module, batch: int) -> float | None:
    """About the FLOPs of one training step of ``model`` on ``batch`` rows: 6 per weight of a dense layer per
    row (forward, and the two products of the backward pass). None where the model has layers that this does
    not count well (convolutions reuse each weight at every position)."""
    if any(isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.ConvTranspose2d)) for m in model.modules()):
        return None
    dense = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return 6.0 * batch * dense


@contextlib.contextmanager
def threads_for_step(flops: float | None, device: torch.device):
    """Train a small network on one CPU thread, and give the thread count back after.

    A step of a few million FLOPs is over in microseconds, shorter than the time OpenMP threads take to meet
    at each operation's end; when other processes share the cores (a parallel GridSearchCV, a test suite, a
    pipeline's other jobs), a waiting thread is descheduled and every operation waits a time slice for it.
    Small tables then trained 4 to 10 times slower on 2 threads than on 1; large steps gain from threads."""
    n = torch.get_num_threads()
    if device.type != "cpu" or n == 1 or flops is None or flops >= SMALL_STEP_FLOPS:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def generator(seed: int) -> torch.Generator:
    """A CPU generator for one purpose (init, shuffling), so no code relies on the global RNG."""
    return torch.Generator().manual_seed(int(seed))


@contextlib.contextmanager
def seeded_global_rng(seed: int, device: torch.device):
    """Run a block with torch's global RNG (dropout, input noise) seeded with ``seed``, and give the caller's
    RNG state back afterwards: a run is then repeatable whatever ran before it in the same process."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield
