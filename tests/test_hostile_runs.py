"""Issue 10, parts A and B: nothing silently wrong, no run folder damaged or mixed, one line and an exit code."""

import json
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import tiny_arrays

from aekit import rundir
from aekit.cli import main
from aekit.data.arrays import from_arrays, split_indices, split_warnings
from aekit.data.catalog import load_dataset
from aekit.estimators import AutoencoderClassifier, AutoencoderTransformer
from aekit.fileio import atomic_open, temporary_name, write_json

QUICK = ["--set", "epochs=2", "--set", "batch_size=64", "--no-progress"]


@pytest.fixture
def sorted_npz(tmp_path):
    """Training rows sorted by class, as many datasets ship."""
    xtr, ytr, xte, yte = tiny_arrays(400, 60)
    order = np.argsort(ytr, kind="stable")
    path = tmp_path / "sorted.npz"
    np.savez(path, x_train=xtr[order], y_train=ytr[order], x_test=xte, y_test=yte)
    return path


def _strict(text):
    def refuse(token):
        raise ValueError(f"non-strict JSON token {token}")
    return json.loads(text, parse_constant=refuse)


# --- A1: the validation split of a user's data --------------------------------------------------------

def test_class_sorted_data_keeps_every_class_in_training_and_validation(sorted_npz):
    data = load_dataset(str(sorted_npz), seed=3)
    assert data.split == "stratified (seed 3)"
    train, val = np.bincount(data.train.labels, minlength=4), np.bincount(data.validation.labels, minlength=4)
    assert (train > 0).all() and (val > 0).all()
    full = train + val
    assert np.abs(val - full * len(data.validation) / full.sum()).max() <= 1  # each class its share
    assert split_warnings(data) == []


def test_split_is_random_from_the_seed_and_disjoint():
    y = np.repeat(np.arange(3), 20)
    a_tr, a_va = split_indices(y, 60, 6, seed=0)
    b_tr, b_va = split_indices(y, 60, 6, seed=1)
    assert not set(a_tr) & set(a_va) and len(a_tr) + len(a_va) == 60
    assert np.bincount(y[a_va]).tolist() == [2, 2, 2]
    assert a_va.tolist() != b_va.tolist()
    assert split_indices(y, 60, 6, seed=0)[1].tolist() == a_va.tolist()


def test_a_class_with_two_rows_is_seen_in_validation_too():
    y = np.array([0] * 98 + [1, 1])
    _, val = split_indices(y, 100, 10, seed=0)
    assert set(y[val]) == {0, 1}


def test_unlabeled_data_gets_a_random_split_not_the_first_rows():
    xtr, _, xte, _ = tiny_arrays(200, 20)
    data = from_arrays("u", xtr, None, xte, None, seed=0)
    first = xtr.reshape(200, -1)[:20]
    assert len(data.validation) == 20 and not np.array_equal(data.validation.images, first)


def test_the_tutorial_split_stays_the_first_rows():
    xtr, ytr, xte, yte = tiny_arrays(200, 20)
    data = from_arrays("t", xtr, ytr, xte, yte, split="first")
    assert np.array_equal(data.validation.images, xtr.reshape(200, -1)[:20]) and data.split == "first"


def test_missing_class_is_warned_and_counts_are_in_metrics(tmp_path, capsys):
    xtr, ytr, xte, yte = tiny_arrays(400, 60)
    keep = yte != 2  # the test split lacks class 2
    path = tmp_path / "gap.npz"
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte[keep], y_test=yte[keep])
    out = tmp_path / "run"
    assert main(["reproduce", "stacked", "--dataset", str(path), "--out", str(out), *QUICK]) == 0
    err = capsys.readouterr().err
    assert "warning: gap test split has no rows of class 2" in err
    m = _strict((out / "stacked" / "metrics.json").read_text())
    assert m["validation_split"] == "stratified (seed 0)"
    assert m["class_counts"]["test"]["2"] == 0 and sum(m["class_counts"]["validation"].values()) == m["n_validation"]


def test_class_sorted_pretrain_learns_every_class(sorted_npz, tmp_path):
    out = tmp_path / "run"
    assert main(["reproduce", "pretrain", "--dataset", str(sorted_npz), "--out", str(out), "--no-progress",
                 "--preset", "modern", "--set", "epochs=2", "--set", "finetune.epochs=4",
                 "--set", "batch_size=32", "--set", "hidden_sizes=64,16"]) == 0
    m = _strict((out / "pretrain" / "metrics.json").read_text())
    assert min(m["class_counts"]["validation"].values()) > 0
    assert m["test_accuracy"] > 0.5  # a class seen only in validation would cap it near 0.75 at best


# --- A2, C11, D18: values -------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, match", [
    (["--set", "hidden_sizes=128,-64"], "hidden_sizes=(128, -64) must be a non-empty tuple of positive ints"),
    (["--set", "hidden_sizes=-5"], "hidden_sizes=(-5,) must be a non-empty tuple of positive ints"),
    (["--set", "learning_rate=inf"], "learning_rate='inf': expected a number (finite numbers only)"),
    (["--set", "learning_rate=nan"], "learning_rate='nan'"),
    (["--set", "weight_decay=nan"], "weight_decay='nan'"),
    (["--set", "learning_rate=1e308"], "learning_rate=1e+308 must be a float in the range (0, 1e+30]"),
    (["--epochs-scale", "inf"], "--epochs-scale inf must be positive and at most 1000"),
    (["--epochs-scale", "1e300"], "--epochs-scale 1e+300 must be positive and at most 1000"),
    (["--code-size", "100000000"], "GiB to train, more than the"),
    (["--set", "hidden_sizes=100000000"], "GiB to train, more than the"),
    (["--set", "epochs=100000000"], "train.epochs=100000000 must be an int in the range [1, 100000]"),
    (["--set", "batch_size=64", "--set", "batch_size=32"], "--set batch_size is given twice ('64' and '32')"),
])
def test_bad_values_exit_2_before_any_work(tiny_npz, tmp_path, capsys, extra, match):
    out = tmp_path / "run"
    assert main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--out", str(out), "--no-progress", *extra]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and match in captured.err, captured.err
    assert "Epoch" not in captured.out
    assert not out.exists() or not any(out.rglob("*"))


def test_negative_sizes_in_toml_are_refused(tiny_npz, tmp_path, capsys):
    toml = tmp_path / "run.toml"
    toml.write_text(f'program = "stacked"\ndataset = "{tiny_npz}"\nout = "{tmp_path / "o"}"\n'
                    "[config]\nhidden_sizes = [128, -64]\n")
    assert main(["train", "--config", str(toml)]) == 2
    assert "hidden_sizes=(128, -64) must be a non-empty tuple of positive ints" in capsys.readouterr().err


# --- A3, D17: divergence --------------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [
    ["--preset", "modern", "--set", "learning_rate=1e6", "--set", "epochs=3"],
    ["--preset", "modern", "--set", "optimizer=sgd", "--set", "learning_rate=1e6", "--set", "epochs=3"],
])
def test_divergence_exits_3_and_keeps_the_previous_run(tiny_npz, tmp_path, capsys, extra):
    out = tmp_path / "run"
    assert main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--out", str(out), *QUICK]) == 0
    before = {p.name: p.read_bytes() for p in (out / "stacked").iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--out", str(out), "--no-progress",
                 "--set", "batch_size=64", *extra]) == 3
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "became NaN or infinite at step" in captured.err, captured.err
    assert "of epoch 0" in captured.err and "warning" not in captured.out
    after = {p.name: p.read_bytes() for p in (out / "stacked").iterdir() if p.is_file()}
    assert after == before  # no figure, checkpoint or metrics from the diverged run
    # no lock left; the partial folder keeps the last good resumable state (here: none yet) and no results
    assert sorted(p.name for p in out.iterdir()) == [".stacked.partial", "stacked"]
    assert [p.name for p in (out / ".stacked.partial").iterdir()] == ["resume"]


def test_json_is_always_strict(tmp_path):
    path = tmp_path / "m.json"
    write_json(path, {"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": -float("inf")}, "e": 0.5})
    assert _strict(path.read_text()) == {"a": None, "b": [1.0, None], "c": {"d": None}, "e": 0.5}


# --- A4: estimators -------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls, params, match", [
    (AutoencoderTransformer, {"max_epochs": 0}, "The 'max_epochs' parameter of AutoencoderTransformer must be an int in the range [1, inf). Got 0 instead."),
    (AutoencoderTransformer, {"max_epochs": -1}, "Got -1 instead"),
    (AutoencoderTransformer, {"max_epochs": 2.5}, "must be an int in the range [1, inf). Got 2.5"),
    (AutoencoderTransformer, {"learning_rate": float("inf")}, "'learning_rate' parameter of AutoencoderTransformer must be a float in the range (0, inf). Got inf"),
    (AutoencoderTransformer, {"learning_rate": "abc"}, "Got 'abc' instead"),
    (AutoencoderTransformer, {"weight_decay": float("nan")}, "'weight_decay'"),
    (AutoencoderTransformer, {"hidden_sizes": (8, -2)}, "'hidden_sizes'"),
    (AutoencoderTransformer, {"activation": "swish"}, "'activation'"),
    (AutoencoderClassifier, {"finetune_epochs": 0}, "'finetune_epochs' parameter of AutoencoderClassifier"),
    (AutoencoderClassifier, {"pretrain_epochs": -1}, "'pretrain_epochs'"),
    (AutoencoderClassifier, {"pseudo_label_threshold": 0.0}, "in the range (0, 1]"),
])
def test_estimator_parameters_are_checked_in_fit(cls, params, match):
    X = np.random.default_rng(0).random((40, 9))
    y = np.arange(40) % 2
    est = cls(**params)  # __init__ only stores
    with pytest.raises(ValueError) as info:
        est.fit(X, y)
    assert isinstance(info.value, TypeError)  # as scikit-learn's InvalidParameterError
    assert match in str(info.value)


def test_estimator_divergence_raises_instead_of_fitting_nan():
    from aekit.errors import TrainingDiverged

    X = np.random.default_rng(0).random((64, 9))
    with pytest.raises(TrainingDiverged, match="became NaN or infinite"):
        AutoencoderTransformer(learning_rate=1e30, max_epochs=3, random_state=0).fit(X)


# --- B5-B8, C10: run folders ----------------------------------------------------------------------------

def test_rerun_replaces_the_whole_folder_and_says_so(tiny_npz, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--out", str(out), *QUICK]) == 0
    (out / "stacked" / "samples.png").write_bytes(b"from a VAE run")
    capsys.readouterr()
    assert main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--out", str(out), *QUICK]) == 0
    assert not (out / "stacked" / "samples.png").exists()
    out_text = capsys.readouterr().out
    assert "holds a previous run" in out_text and "replacing the previous run" in out_text


def test_a_crash_while_writing_leaves_the_previous_run_loadable(tiny_npz, tmp_path, monkeypatch):
    import aekit
    from aekit import outputs

    out = tmp_path / "run"
    assert main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--out", str(out), *QUICK]) == 0
    before = {p.name: p.read_bytes() for p in (out / "stacked").iterdir() if p.is_file()}
    real_write_json = outputs.write_json

    def crash_after_weights(path, obj):  # the checkpoint's weights are written, then the process dies
        raise OSError("disk full")
    monkeypatch.setattr(outputs, "write_json", crash_after_weights)
    with pytest.raises(OSError):
        main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--out", str(out), "--seed", "5", *QUICK])
    monkeypatch.setattr(outputs, "write_json", real_write_json)
    after = {p.name: p.read_bytes() for p in (out / "stacked").iterdir() if p.is_file()}
    assert after == before
    aekit.load(out / "stacked")
    assert sorted(p.name for p in out.iterdir()) == [".stacked.partial", "stacked"]  # the finished training kept
    assert main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--out", str(out), "--seed", "5", "--resume",
                 *QUICK]) == 0  # writes the results without training again
    assert sorted(p.name for p in out.iterdir()) == ["stacked"]
    assert json.loads((out / "stacked" / "metrics.json").read_text())["seed"] == 5


@pytest.mark.slow  # a second process holds the lock
def test_a_second_run_into_a_locked_folder_fails_at_once(tiny_npz, tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from aekit.rundir import claim\n"
                               "with claim(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)", str(out)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--out", str(out), *QUICK]) == 2
        err = capsys.readouterr().err
        assert f"another aekit run (pid {holder.pid}) is writing into this folder" in err and err.count("\n") == 1
    finally:
        holder.kill()  # dies holding the lock: the kernel releases it
        holder.wait()
    assert (out / rundir.LOCK).exists()  # left behind by the killed run, and no obstacle
    assert main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--out", str(out), *QUICK]) == 0
    assert not (out / rundir.LOCK).exists()


def test_the_same_process_cannot_claim_a_folder_twice(tmp_path):
    from aekit.errors import DataError

    with rundir.claim(tmp_path / "o"):
        with pytest.raises(DataError, match=f"another aekit run \\(pid {os.getpid()}\\)"):
            with rundir.claim(tmp_path / "o"):
                pass
        assert (tmp_path / "o" / rundir.LOCK).exists()  # the outer claim still holds it


def test_a_folder_of_the_users_own_is_never_replaced(tiny_npz, tmp_path, capsys):
    out = tmp_path / "run"
    (out / "stacked").mkdir(parents=True)
    (out / "stacked" / "thesis.tex").write_text("years of work")
    assert main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--out", str(out), *QUICK]) == 2
    captured = capsys.readouterr()
    assert "holds files that are not an aekit run" in captured.err and "Epoch" not in captured.out
    assert (out / "stacked" / "thesis.tex").read_text() == "years of work"


def test_a_failed_swap_puts_the_previous_run_back(tmp_path, monkeypatch):
    target = tmp_path / "stacked"
    target.mkdir()
    (target / "metrics.json").write_text("{}")
    real = os.replace
    calls = []

    def failing_second_replace(a, b):
        calls.append((a, b))
        if len(calls) == 2:
            raise OSError("disk gone")
        return real(a, b)
    monkeypatch.setattr(rundir.os, "replace", failing_second_replace)
    with pytest.raises(OSError):
        with rundir.staged(target) as folder:
            (folder / "metrics.json").write_text('{"new": 1}')
    assert (target / "metrics.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["stacked"]


def test_out_that_is_a_file_fails_before_training(tiny_npz, tmp_path, capsys):
    target = tmp_path / "afile"
    target.write_text("x")
    for out in (target, target / "below"):
        assert main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--out", str(out), *QUICK]) == 2
        captured = capsys.readouterr()
        assert "Epoch" not in captured.out and str(out) in captured.err and captured.err.count("\n") == 1
    assert target.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_out_not_writable_fails_before_training(tiny_npz, tmp_path, capsys):
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    assert main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--out", str(locked / "x"), *QUICK]) == 2
    assert "cannot write there" in capsys.readouterr().err


def test_temporary_names_are_unique_and_concurrent_writers_do_not_collide(tmp_path):
    assert temporary_name("a.png", "part") != temporary_name("a.png", "part")
    target, errors = tmp_path / "same.bin", []

    def write(i):
        try:
            for _ in range(20):
                with atomic_open(target, "wb") as f:
                    f.write(bytes([i]) * 10000)
        except Exception as e:  # noqa: BLE001 - any failure is the test's failure
            errors.append(e)
    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    data = target.read_bytes()
    assert len(data) == 10000 and len(set(data)) == 1  # one writer's whole file, never a mix
    assert [p.name for p in tmp_path.iterdir()] == ["same.bin"]


def test_huge_label_values_are_refused_at_once(tmp_path):
    from aekit.errors import DataError

    xtr, ytr, xte, yte = tiny_arrays(50, 10)
    ytr = ytr.astype(np.int64)
    ytr[3] = 2**62  # would otherwise make 2**62 class names
    with pytest.raises(DataError, match="labels are class indices 0..K-1 .* found label 4611686018427387904"):
        from_arrays("big", xtr, ytr, xte, yte)


def test_damaged_error_quantiles_are_named(tiny_npz, tmp_path, capsys):
    import torch
    from safetensors.torch import load_file, save_file

    out = tmp_path / "run"
    assert main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--out", str(out), *QUICK]) == 0
    weights = out / "stacked" / "model.safetensors"
    tensors = load_file(str(weights))
    tensors["extra.train_error_quantiles"] = torch.zeros(7, dtype=torch.float64)
    save_file(tensors, str(weights))
    np.save(tmp_path / "x.npy", tiny_arrays(5, 5)[2])
    capsys.readouterr()
    assert main(["score", str(out / "stacked"), str(tmp_path / "x.npy")]) == 2
    assert "extra.train_error_quantiles must be 1001 finite numbers" in capsys.readouterr().err


def test_saving_over_a_checkpoint_never_pairs_old_config_with_new_weights(tmp_path, monkeypatch):
    import aekit
    from aekit import checkpoint
    from aekit.errors import DataError
    from aekit.models.stacked import AutoencoderConfig, StackedAutoencoder

    StackedAutoencoder(AutoencoderConfig(input_size=6, hidden_sizes=(4, 2))).save(tmp_path / "m")
    monkeypatch.setattr(checkpoint, "write_json", lambda *a: (_ for _ in ()).throw(OSError("killed")))
    with pytest.raises(OSError):
        StackedAutoencoder(AutoencoderConfig(input_size=6, hidden_sizes=(5, 3))).save(tmp_path / "m")
    with pytest.raises(DataError, match="not an aekit checkpoint"):
        aekit.load(tmp_path / "m")


def test_labels_beyond_the_class_names_are_refused():
    from aekit.errors import DataError

    xtr, ytr, xte, yte = tiny_arrays(50, 10)
    ytr = ytr.copy()
    ytr[0] = 7
    with pytest.raises(DataError, match="label 7 is beyond the 4 classes"):
        from_arrays("t", xtr, ytr, xte, yte, classes=("a", "b", "c", "d"))


@pytest.mark.parametrize("key, value, match", [("dropout", "1.5", "dropout=1.5 must be a float in the range [0, 1)"),
                                               ("sparsity_target", "2", "sparsity_target=2.0 must be a float in the range (0, 1)")])
def test_model_ranges_are_checked_before_any_work(key, value, match):
    from aekit.errors import ConfigError
    from aekit.runner import RunSpec, build_configs

    with pytest.raises(ConfigError, match=re.escape(match)):
        build_configs(RunSpec(program="all", config={key: value}))


@pytest.mark.parametrize("params", [{"batch_size": 10**400}, {"learning_rate": 10**400}, {"random_state": -1},
                                    {"random_state": 2**40}])
def test_estimator_extreme_parameters_are_invalid_parameters(params):
    from aekit.constraints import InvalidParameterError

    with pytest.raises(InvalidParameterError, match=f"The '{next(iter(params))}' parameter"):
        AutoencoderTransformer(**params).fit(np.zeros((4, 3)))


def test_fit_counts_the_steps_of_a_short_last_epoch():
    import torch

    from aekit.training.loop import fit

    class Steps:  # 5 steps in epochs of 4
        device = torch.device("cpu")

        def __len__(self):
            return 4

        def epoch(self, e):
            return iter([(torch.zeros(1),)] * (4 if e == 0 else 1))
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    constant = lambda m, x: (m(x) * 0).sum() + 1.0  # noqa: E731 - a loss of 1.0 every step
    assert fit(model, constant, opt, Steps(), 2, display_step=0).epoch_loss == [1.0, 1.0]  # not [1.0, 0.25]
    assert fit(model, constant, opt, Steps(), 0).epoch_loss == []


def test_a_folder_that_became_foreign_during_the_run_is_kept_and_nothing_is_left(tmp_path):
    from aekit.errors import DataError

    target = tmp_path / "stacked"
    with pytest.raises(DataError, match="holds files that are not an aekit run"):
        with rundir.staged(target) as folder:
            (folder / "metrics.json").write_text("{}")
            target.mkdir()
            (target / "notes.txt").write_text("mine")  # appeared while the run was training
    assert [p.name for p in tmp_path.iterdir()] == ["stacked"] and (target / "notes.txt").read_text() == "mine"


def test_a_failing_run_waits_for_its_last_resume_write(tiny_npz, tmp_path, capsys, monkeypatch):
    """A run that diverges while the background writer is still saving the previous epoch must not exit under
    it (the interpreter would abort inside torch.save and leave a partial file)."""
    import time

    import torch

    import aekit.runner
    from aekit.errors import TrainingDiverged
    from aekit.training import resume

    save = torch.save

    def slow_save(obj, path, *args, **kwargs):
        time.sleep(0.5)
        save(obj, path, *args, **kwargs)

    monkeypatch.setattr(resume.torch, "save", slow_save)

    def diverging(cfg, data, device, store, **kwargs):
        store.writer.put(store.folder / "train.pt", {"epoch": 4})  # the last good epoch, still being written
        raise TrainingDiverged("loss became NaN or infinite at step 0 of epoch 5")

    monkeypatch.setattr(aekit.runner, "run_stacked", diverging)
    out = tmp_path / "run"
    assert main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--out", str(out), *QUICK]) == 3
    folder = out / ".stacked.partial" / "resume"
    assert sorted(p.name for p in folder.iterdir()) == ["state.json", "train.pt"]  # written whole, no .part
    assert torch.load(folder / "train.pt") == {"epoch": 4}
