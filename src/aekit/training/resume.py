"""Exact resume: a run's training state, saved at every epoch's end and restored bit for bit.

A run is a sequence of named *phases* (``layer-1``, ``train``; or ``pretrain`` then ``finetune``), each
one call of :func:`aekit.training.loop.fit`. Each phase keeps one file, ``<phase>.pt``, in the run's
``resume/`` folder, rewritten atomically at the end of every epoch: the weights of every module the phase
changes, the optimizer, the schedule, the gradient scaler, the tracked callbacks (early stopping and its
best weights), the history so far, and every RNG in play — torch (CPU and CUDA), numpy and Python — for
every rank. Batch order needs no saving: it is a pure function of (seed, epoch). A finished phase's file
says so, and a resumed run skips it after loading its final state, so a run killed at any moment
continues from the last completed epoch and ends with the same bits as a run never interrupted.

Files are written by rank 0 only, in a background thread from CPU copies taken at the epoch's end, so
the hot loop does not wait for the disk; the last write of a phase is waited for.
"""

from __future__ import annotations

import json
import os
import queue
import random
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aekit.errors import ConfigError, DataError
from aekit.fileio import atomic_path, write_json
from aekit.runtime import World, world

FORMAT = 1
STATE = "state.json"  # the fingerprint of the run that made the folder, and whether it completed


def rng_state() -> dict:
    """Every global RNG a training step may draw from."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def unwrap(module: nn.Module) -> nn.Module:
    """The module whose weights are saved: without a DDP (``.module``) or ``torch.compile`` (``_orig_mod``) wrapper."""
    while True:
        inner = getattr(module, "_orig_mod", None) or (module.module if isinstance(
            module, nn.parallel.DistributedDataParallel) else None)
        if inner is None:
            return module
        module = inner


def cpu_copy(obj: Any) -> Any:
    """A deep copy of a state dict on the CPU (the live tensors keep changing while it is written)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_copy(v) for v in obj)
    return obj


class _Writer:
    """One background thread writing the newest snapshot of each file; :meth:`flush` waits for all."""

    def __init__(self):
        self.jobs: queue.Queue = queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="aekit-resume-writer", daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            path, obj = self.jobs.get()
            try:
                if self.error is None:
                    with atomic_path(path) as part:
                        torch.save(obj, part)
            except BaseException as e:  # reported by the next put/flush, in the training thread
                self.error = e
            finally:
                self.jobs.task_done()

    def put(self, path: Path, obj: Any) -> None:
        self._raise()
        self.jobs.put((path, obj))

    def flush(self) -> None:
        self.jobs.join()
        self._raise()

    def settle(self) -> None:
        """Wait for pending writes without raising (a run failing for another reason): the interpreter must not
        exit with the thread inside ``torch.save``, which aborts the process and leaves a partial file."""
        self.jobs.join()

    def _raise(self):
        if self.error is not None:
            e, self.error = self.error, None
            raise DataError(f"cannot write the resume state ({e}); check the disk space and permissions of --out")


class ResumeStore:
    """The ``resume/`` folder of one program run.

    ``fingerprint`` says what run this is (recipe, dataset, seed, world size, torch version, device, precision,
    torch.compile). With ``resume=False`` the
    folder is emptied and the run starts over; with ``resume=True`` a folder made by a different run is
    refused, and the phases saved in it are continued.
    """

    def __init__(self, folder: str | os.PathLike, fingerprint: dict, *, resume: bool = False, w: World | None = None):
        self.folder, self.fingerprint = Path(folder), as_saved(fingerprint)
        self.world = w or world()
        self.writer = _Writer() if self.world.is_main else None
        self.resumed = False
        saved = read_state(self.folder)
        if resume and saved is not None:
            check_fingerprint(self.folder, saved.get("fingerprint", {}), self.fingerprint)
            self.resumed = True
        elif self.world.is_main:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.mkdir(parents=True)
            write_json(self.folder / STATE, {"format": FORMAT, "complete": False, "fingerprint": self.fingerprint})
        self.world.barrier()

    @property
    def complete(self) -> bool:
        saved = read_state(self.folder)
        return bool(saved and saved.get("complete"))

    def phase(self, name: str, **modules: nn.Module) -> "PhaseState":
        """The saved state of phase ``name``; ``modules`` are changed by it beside the trained model (e.g. an
        autoencoder whose encoder a classifier shares)."""
        return PhaseState(self, name, modules)

    def resume_point(self, phases: list[str]) -> tuple[str, int] | None:
        """Where the run continues: the first of ``phases`` (in run order) not finished and its next epoch, or
        None when every one has finished."""
        for name in phases:
            path = self.folder / f"{name}.pt"
            if not self.resumed or not path.exists():
                return name, 0
            saved = load_phase_file(path)
            if not saved["done"]:
                return name, int(saved["next_epoch"])
        return None

    def finish(self) -> None:
        """Mark the run complete (after its results are written); waits for every pending write."""
        self.flush()
        if self.world.is_main:
            write_json(self.folder / STATE, {"format": FORMAT, "complete": True, "fingerprint": self.fingerprint})

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def settle(self) -> None:
        """Wait for pending writes, raising nothing: call it on the way out of a failing run."""
        if self.writer is not None:
            self.writer.settle()


def as_saved(fingerprint: dict) -> dict:
    """The fingerprint as ``state.json`` holds it (tuples become lists), so that it compares equal to a saved one."""
    return json.loads(json.dumps(fingerprint))


def read_state(folder: Path) -> dict | None:
    try:
        state = json.loads((folder / STATE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as e:
        raise DataError(f"{folder / STATE}: unreadable resume state ({e}); rerun without --resume to start over") from None
    if not isinstance(state, dict) or not isinstance(state.get("fingerprint", {}), dict):
        raise DataError(f"{folder / STATE}: damaged resume state (not the JSON object aekit writes); "
                        "rerun without --resume to start over")
    return state


PHASE_KEYS = ("next_epoch", "done", "history", "modules", "optimizer", "rng")  # what every <phase>.pt holds


def load_phase_file(path: Path) -> dict:
    """A phase's saved state, checked for the keys :meth:`PhaseState.save` writes; a damaged file is a DataError."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many kinds on a damaged file: none of them lets the run continue
        detail = (str(e).splitlines() or [type(e).__name__])[0].split(". ")[0]  # torch's first sentence says it
        raise DataError(f"{path}: unreadable resume state ({detail}); rerun without --resume to start over") from None
    missing = [k for k in PHASE_KEYS if not isinstance(saved, dict) or k not in saved]
    if missing:
        raise DataError(f"{path}: damaged resume state (it lacks {', '.join(missing)}); "
                        "rerun without --resume to start over")
    return saved


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


OFF = (None, 0, "", [], False)  # values of a field that is off


def check_fingerprint(folder: Path, saved: dict, now: dict) -> None:
    """Refuse to continue a state made by a different run (any field of the fingerprint), naming what differs. A
    field the saved state lacks whose value now is off (0, empty, false: one added to the recipe since) is the
    same run."""
    a, b = _flat(saved), _flat(now)
    diff = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k) and not (k not in a and b[k] in OFF)]
    if diff:
        shown = "; ".join(f"{k}: saved {a.get(k)!r}, now {b.get(k)!r}" for k in diff[:4])
        more = f" (and {len(diff) - 4} more)" if len(diff) > 4 else ""
        raise ConfigError(f"{folder} holds the state of a different run ({shown}{more}); --resume continues only "
                          "the same run: rerun without --resume to start over, or choose another --out")


class PhaseState:
    """What :func:`aekit.training.loop.fit` saves and restores for one phase."""

    def __init__(self, store: ResumeStore, name: str, modules: dict[str, nn.Module]):
        self.store, self.name, self.modules = store, name, modules
        self.path = store.folder / f"{name}.pt"
        self.tracked: dict[str, Any] = {}

    def track(self, **objects) -> "PhaseState":
        """Objects with ``state_dict``/``load_state_dict`` (callbacks such as early stopping) saved with the phase."""
        self.tracked.update({k: v for k, v in objects.items() if v is not None})
        return self

    def restore(self, model: nn.Module, optimizer, scheduler=None, scaler=None) -> dict | None:
        """Load the saved state into the objects of a new run; returns its ``next_epoch``, ``done`` and history,
        or None where the phase has not started."""
        if not self.store.resumed or not self.path.exists():
            return None
        saved = load_phase_file(self.path)
        modules = self._modules(model)
        for name, module in modules.items():  # every module's names and shapes, before anything is loaded
            got, want = saved["modules"].get(name) if isinstance(saved["modules"], dict) else None, module.state_dict()
            if not isinstance(got, dict) or set(got) != set(want) or any(
                    getattr(got[k], "shape", None) != want[k].shape for k in want):
                raise DataError(f"{self.path}: the saved {name} does not fit this run's model (another run's "
                                "state?); rerun without --resume to start over")
        try:
            for name, module in modules.items():
                module.load_state_dict(saved["modules"][name])
            optimizer.load_state_dict(saved["optimizer"])
            for obj, key in ((scheduler, "scheduler"), (scaler, "scaler"),
                             *((v, f"tracked.{k}") for k, v in self.tracked.items())):
                if obj is not None and saved.get(key) is not None:
                    obj.load_state_dict(saved[key])
            set_rng_state(saved["rng"][self.store.world.rank])
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
            raise DataError(f"{self.path}: damaged resume state ({type(e).__name__}: {e}); the run stops here, "
                            "nothing was written: rerun without --resume to start over") from None
        return saved

    def save(self, model: nn.Module, optimizer, scheduler, scaler, *, next_epoch: int, done: bool,
             history: dict) -> None:
        """Snapshot the phase after an epoch (every rank calls this: the RNGs of all ranks are gathered)."""
        rngs = self.store.world.gather(rng_state())
        if not self.store.world.is_main:
            return
        snapshot = {
            "format": FORMAT, "phase": self.name, "next_epoch": next_epoch, "done": done, "history": history,
            "modules": {name: cpu_copy(m.state_dict()) for name, m in self._modules(model).items()},
            "optimizer": cpu_copy(optimizer.state_dict()), "rng": rngs,
            "scheduler": None if scheduler is None else cpu_copy(scheduler.state_dict()),
            "scaler": None if scaler is None else cpu_copy(scaler.state_dict()),
            **{f"tracked.{k}": cpu_copy(v.state_dict()) for k, v in self.tracked.items()},
        }
        self.store.writer.put(self.path, snapshot)
        if done:
            self.store.writer.flush()

    def _modules(self, model: nn.Module) -> dict[str, nn.Module]:
        return {"model": unwrap(model), **self.modules}
