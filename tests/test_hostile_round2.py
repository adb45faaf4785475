"""Hostile input, round 2: what was silently wrong, the tracebacks and the permissions (one test per case)."""

from __future__ import annotations

import gzip
import json
import os
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_arrays

import aekit
from aekit.cli import main
from aekit.data.idx import write_idx
from aekit.errors import DataError
from aekit.fileio import check_destination
from aekit.rundir import locked_beside

QUICK = ["--set", "epochs=1", "--set", "batch_size=64", "--no-progress"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("r2")
    xtr, ytr, xte, yte = tiny_arrays(200, 40)
    np.savez(root / "tiny.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    assert main(["reproduce", "stacked", "--dataset", str(root / "tiny.npz"), "--out", str(root / "out"),
                 "--set", "hidden_sizes=32,8", *QUICK]) == 0
    np.save(root / "in.npy", xte[:5])
    return root


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


# --- silently wrong ---------------------------------------------------------------------------------------

def test_two_converts_into_one_folder_the_second_fails_at_once(tmp_path, capsys):
    xtr, ytr, xte, yte = tiny_arrays(50, 10)
    np.savez(tmp_path / "a.npz", x_train=xtr, x_test=xte)
    dest = tmp_path / "ds"
    with locked_beside(dest, "DIR"):  # a convert in progress into the same folder
        assert main(["data", "convert", str(tmp_path / "a.npz"), str(dest)]) == 2
    assert "another aekit process" in one_error_line(capsys)
    assert not dest.exists()
    assert main(["data", "convert", str(tmp_path / "a.npz"), str(dest)]) == 0  # the lock went with its holder
    assert np.load(dest / "x_train.npy").shape == (50, 28, 28)


def test_x_val_without_y_val_is_refused_before_training(tmp_path, capsys):
    xtr, ytr, xte, yte = tiny_arrays(200, 40)
    folder = tmp_path / "ds"
    folder.mkdir()
    for name, arr in (("x_train", xtr), ("y_train", ytr), ("x_test", xte), ("y_test", yte), ("x_val", xte)):
        np.save(folder / f"{name}.npy", arr)
    code = main(["reproduce", "pretrain", "--preset", "modern", "--dataset", str(folder), "--out",
                 str(tmp_path / "out"), *QUICK])
    assert code == 2
    assert "x_val.npy has no y_val.npy" in one_error_line(capsys)
    assert not (tmp_path / "out" / "pretrain").exists()


# --- outputs that cannot be written: one line, before any work ---------------------------------------------

@pytest.mark.parametrize("where", ["proc", "under_file"])
def test_unwritable_outputs_are_refused_before_any_work(run, tmp_path, capsys, where):
    (tmp_path / "afile").write_text("precious")
    bad = {"proc": Path("/proc/aekit-out"), "under_file": tmp_path / "afile" / "sub"}[where]
    model, inp = str(run / "out" / "stacked"), str(run / "in.npy")
    for argv in (["encode", model, inp, "-o", str(bad / "c.npy")], ["score", model, inp, "-o", str(bad / "s.csv")],
                 ["export", model, "--onnx", str(bad / "e.onnx")], ["data", "convert", str(run / "tiny.npz"), str(bad)]):
        assert main(argv) == 2, argv
        line = one_error_line(capsys)
        assert str(bad) in line and ".part" not in line, line
    assert (tmp_path / "afile").read_text() == "precious"


def test_check_destination_names_the_users_path_not_a_temporary_file(tmp_path):
    with pytest.raises(DataError, match=r"cannot write /proc/x\.npy: cannot create files in /proc"):
        check_destination("/proc/x.npy")
    assert [p for p in tmp_path.iterdir()] == []  # the write check leaves nothing behind
    check_destination(tmp_path / "new" / "deeper" / "x.npy")
    assert not (tmp_path / "new").exists()


# --- damaged resume states ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("finished")
    xtr, ytr, xte, yte = tiny_arrays(200, 40)
    np.savez(root / "tiny.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    assert main(["reproduce", "stacked", "--dataset", str(root / "tiny.npz"), "--out", str(root / "out"),
                 "--set", "hidden_sizes=32,8", *QUICK]) == 0
    return root


@pytest.fixture
def killed(finished, tmp_path):
    """A stacked run whose partial folder holds a resumable state, as a killed run leaves it."""
    import shutil

    shutil.copytree(finished / "out", tmp_path / "out")
    argv = ["reproduce", "stacked", "--dataset", str(finished / "tiny.npz"), "--out", str(tmp_path / "out"),
            "--set", "hidden_sizes=32,8", *QUICK]
    done = tmp_path / "out" / "stacked"
    partial = tmp_path / "out" / ".stacked.partial"
    partial.mkdir()
    os.replace(done / "resume", partial / "resume")  # the state of a run that has not finished
    state = json.loads((partial / "resume" / "state.json").read_text())
    state["complete"] = False
    (partial / "resume" / "state.json").write_text(json.dumps(state))
    return argv + ["--resume"], partial / "resume"


@pytest.mark.parametrize("damage", ["state_list", "pt_empty_dict", "pt_other_model", "pt_truncated"])
def test_damaged_resume_states_get_one_line(killed, capsys, damage):
    argv, folder = killed
    pt = folder / "train.pt"
    if damage == "state_list":
        (folder / "state.json").write_text("[]")
    elif damage == "pt_empty_dict":
        torch.save({}, pt)
    elif damage == "pt_other_model":
        saved = torch.load(pt, weights_only=False)
        saved["modules"]["model"] = {"features.0.weight": torch.zeros(3)}
        torch.save(saved, pt)
    else:
        pt.write_bytes(pt.read_bytes()[:100])
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert "rerun without --resume" in line and str(folder) in line


def test_damaged_resume_state_with_tensorboard(killed, tmp_path, capsys):
    pytest.importorskip("tensorboard")
    argv, folder = killed
    (folder / "train.pt").write_bytes((folder / "train.pt").read_bytes()[:100])
    assert main(argv + ["--tensorboard", str(tmp_path / "tb")]) == 2
    assert "unreadable resume state" in one_error_line(capsys)


def test_resume_of_a_finished_run_without_metrics(tmp_path, capsys):
    xtr, ytr, xte, yte = tiny_arrays(200, 40)
    np.savez(tmp_path / "tiny.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    argv = ["reproduce", "stacked", "--dataset", str(tmp_path / "tiny.npz"), "--out", str(tmp_path / "out"),
            "--set", "hidden_sizes=32,8", *QUICK]
    assert main(argv) == 0
    (tmp_path / "out" / "stacked" / "metrics.json").unlink()
    capsys.readouterr()
    assert main(argv + ["--resume"]) == 2
    assert "metrics.json" in one_error_line(capsys)


# --- the rest of the list -----------------------------------------------------------------------------------------

def test_world_size_without_torchrun(run, tmp_path, monkeypatch, capsys):
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert main(["reproduce", "stacked", "--dataset", str(run / "tiny.npz"), "--out", str(tmp_path / "o"), *QUICK]) == 2
    line = one_error_line(capsys)
    assert "MASTER_ADDR" in line and "torchrun" in line


@pytest.mark.parametrize("how", ["npy", "npz"])
def test_object_arrays_are_named_as_such(tmp_path, capsys, how):
    rows = np.empty(3, dtype=object)
    rows[:] = [np.zeros(4), np.zeros(5), np.zeros(6)]
    if how == "npy":
        folder = tmp_path / "ds"
        folder.mkdir()
        np.save(folder / "x_train.npy", np.zeros((20, 784), np.uint8))
        np.save(folder / "x_test.npy", np.zeros((5, 784), np.uint8))
        np.save(folder / "y_train.npy", rows, allow_pickle=True)
        target = folder
    else:
        target = tmp_path / "obj.npz"
        np.savez(target, x_train=rows, x_test=rows)
    assert main(["reproduce", "stacked", "--dataset", str(target), "--out", str(tmp_path / "o"), *QUICK]) == 2
    line = one_error_line(capsys)
    assert "Python objects" in line and "truncated" not in line
    assert main(["data", "convert", str(target), str(tmp_path / "conv")]) == 2
    line = one_error_line(capsys)
    assert ("Python objects" in line or "is already a dataset folder" in line) and "truncated" not in line


def test_a_test_split_of_one_image_skips_the_code_map(tmp_path, capsys):
    xtr, ytr, xte, yte = tiny_arrays(200, 40)
    np.savez(tmp_path / "one.npz", x_train=xtr, y_train=ytr, x_test=xte[:1], y_test=yte[:1])
    assert main(["reproduce", "stacked", "--dataset", str(tmp_path / "one.npz"), "--out", str(tmp_path / "o"),
                 "--set", "hidden_sizes=32,8", *QUICK]) == 0
    assert "codes.png skipped" in capsys.readouterr().out
    run_dir = tmp_path / "o" / "stacked"
    assert (run_dir / "metrics.json").is_file() and not (run_dir / "codes.png").exists()


@pytest.mark.parametrize("layout, expect", [
    ("npz_members", "it holds x_test.npz, x_train.npz"),
    ("png_no_test", "has a train/ folder but no test/"),
])
def test_folder_messages_say_what_was_found(tmp_path, capsys, layout, expect):
    folder = tmp_path / "ds"
    folder.mkdir()
    if layout == "npz_members":
        np.savez(folder / "x_train.npz", x=np.zeros((4, 784), np.uint8))
        np.savez(folder / "x_test.npz", x=np.zeros((4, 784), np.uint8))
        argv = ["reproduce", "stacked", "--dataset", str(folder), "--out", str(tmp_path / "o"), *QUICK]
    else:
        (folder / "train").mkdir()
        argv = ["data", "convert", str(folder), str(tmp_path / "o")]
    assert main(argv) == 2
    assert expect in one_error_line(capsys)


def test_convert_of_a_truncated_gzip_idx(tmp_path, capsys):
    xtr, ytr, xte, yte = tiny_arrays(200, 40)
    folder = tmp_path / "idx"
    folder.mkdir()
    for name, arr in (("train-images-idx3-ubyte", xtr), ("t10k-images-idx3-ubyte", xte)):
        write_idx(folder / name, arr)
        data = gzip.compress((folder / name).read_bytes())
        (folder / name).unlink()
        (folder / f"{name}.gz").write_bytes(data[: len(data) // 2] if name.startswith("train") else data)
    assert main(["data", "convert", str(folder), str(tmp_path / "o")]) == 2
    assert "truncated" in one_error_line(capsys)
    assert not (tmp_path / "o").exists()


# --- permissions ---------------------------------------------------------------------------------------------------

def test_every_file_of_a_run_gets_the_umask_mode(run):
    mask = os.umask(0)
    os.umask(mask)
    want = 0o666 & ~mask
    folder = run / "out" / "stacked"
    for name in ("model.safetensors", "config.json", "metrics.json", "reconstruction.png"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == want, name


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_weights_say_permission_denied(run, tmp_path, capsys):
    import shutil

    copy = tmp_path / "ck"
    shutil.copytree(run / "out" / "stacked", copy)
    (copy / "model.safetensors").chmod(0)
    assert main(["encode", str(copy), str(run / "in.npy"), "-o", str(tmp_path / "c.npy")]) == 2
    assert "ermission denied" in one_error_line(capsys)


def test_lock_is_released_when_its_holder_fails(tmp_path):
    with pytest.raises(RuntimeError):
        with locked_beside(tmp_path / "ds", "DIR"):
            raise RuntimeError("boom")
    done = threading.Event()

    def take():
        with locked_beside(tmp_path / "ds", "DIR"):
            done.set()
    t = threading.Thread(target=take)
    t.start()
    t.join(5)
    assert done.is_set()


def test_aekit_load_still_reads_the_run(run):
    assert aekit.load(run / "out" / "stacked").config.code_size == 8
