"""The throughput benchmark's parts: FLOP counts, peers skipped with a note, the command's timings, the JSON fields."""

import json
import sys

import numpy as np
import pytest
import torch
from torch import nn

from aekit.models.stacked import AutoencoderConfig, StackedAutoencoder
from benchmarks import peers
from benchmarks.recipe_speed import forward_flops, training_flops_per_sample
from benchmarks.throughput import to_markdown


def test_mlp_training_flops_are_six_times_the_weights():
    model = StackedAutoencoder(AutoencoderConfig(input_size=784, hidden_sizes=(256, 128)), torch.Generator().manual_seed(0))
    weights = sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight"))
    assert weights == 466_944  # the 468,368 parameters less the 1,424 biases
    assert training_flops_per_sample(model, 784) == 6 * weights


def test_conv_flops_count_every_output_position():
    conv = nn.Conv2d(1, 4, 3, stride=2, padding=1)  # 28x28 -> 14x14
    assert forward_flops(conv, torch.zeros(2, 1, 28, 28)) == 2 * 2 * 4 * 14 * 14 * 9
    up = nn.ConvTranspose2d(4, 1, 3, stride=2, padding=1, output_padding=1)  # 14x14 -> 28x28
    assert forward_flops(up, torch.zeros(2, 4, 14, 14)) == 2 * 2 * 4 * 14 * 14 * 9


def test_peers_are_skipped_with_a_note_without_tensorflow(tmp_path, monkeypatch):
    monkeypatch.setattr(peers, "has_tensorflow", lambda python: False)
    out = peers.run_peers(tmp_path / "none.npz", 1, log=lambda s: None)
    assert set(out) == {"tf1", "keras"}
    assert all("pip install" in p["skipped"] and "benchmarks/requirements.txt" in p["skipped"] for p in out.values())
    python, note = peers.peer_python(str(tmp_path / "nope"))
    assert python is None and "--peer-python" in note and "no such interpreter" in note
    assert peers.run_peers(tmp_path / "none.npz", 1, log=lambda s: None, skip=True)["tf1"]["skipped"].endswith("(--no-peers)")


def test_peer_arrays_hold_the_weights_as_in_by_out(tmp_path):
    model = StackedAutoencoder(AutoencoderConfig(input_size=20, hidden_sizes=(8, 4)), torch.Generator().manual_seed(0))
    x = np.zeros((3, 20), np.uint8)
    peers.write_arrays(tmp_path / "a.npz", x, model.state_dict())
    a = np.load(tmp_path / "a.npz")
    assert [a[f"W{i}"].shape for i in range(1, 5)] == [(20, 8), (8, 4), (4, 8), (8, 20)]
    assert [a[f"b{i}"].shape for i in range(1, 5)] == [(8,), (4,), (8,), (20,)]
    first = next(m for m in model.modules() if isinstance(m, nn.Linear))
    np.testing.assert_array_equal(a["W1"], first.weight.detach().numpy().T)


def test_tf1_peer_hands_out_batches_like_next_batch():
    from benchmarks.tf1_peer import NextBatch

    nb = NextBatch(np.arange(10)[:, None], seed=0)
    epoch = np.concatenate([nb(3) for _ in range(3)])[:, 0]
    assert len(set(epoch)) == 9  # one permutation, no repeats within an epoch
    assert len(nb(3)) == 3  # the next epoch starts a new permutation


def test_run_metrics_hold_figure_and_checkpoint_seconds(tiny_npz, tmp_path):
    from aekit.cli import main

    assert main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--epochs-scale", "0.02", "--no-progress",
                 "--out", str(tmp_path)]) == 0
    seconds = json.loads((tmp_path / "stacked" / "metrics.json").read_text())["seconds"]
    assert {"train", "total", "figures", "checkpoint"} <= set(seconds)
    assert all(v >= 0 for v in seconds.values())


@pytest.mark.slow  # runs aekit in a subprocess
@pytest.mark.skipif(sys.platform != "linux", reason="runs aekit in a subprocess; linux is where CI runs it")
def test_the_command_is_measured_end_to_end(tiny_npz):
    from benchmarks.command import reproduce

    c = reproduce(str(tiny_npz), 0.02)
    assert c["epochs"] == 1 and c["train_seconds"] > 0
    assert c["wall_seconds"] > c["train_seconds"] and c["startup_and_exit_seconds"] > 0
    assert c["command"].startswith("aekit reproduce stacked --dataset")


def test_markdown_reports_ratios_and_skipped_peers():
    r = json.loads(open("benchmarks/results/throughput.json").read())
    r["peers"] = {"tf1": {"skipped": "tensorflow is not installed"}, "keras": {"samples_per_s": 1.0}}
    r["speedup_vs_keras"] = 2.0
    table = to_markdown(r)
    assert "tensorflow is not installed" in table and "aekit / keras" in table


def test_the_step_ceiling_times_every_matmul_of_a_training_step():
    from benchmarks.ceiling import step_matmul_gflops, step_shapes

    shapes = step_shapes([784, 256, 128], 32)
    assert shapes == [(32, 784, 256), (784, 32, 256), (32, 256, 128), (256, 32, 128), (32, 128, 256)]
    assert step_matmul_gflops([20, 8, 20], 16, min_seconds=0.01) > 0


def test_targets_table_says_which_targets_hold():
    from benchmarks.throughput import matmuls_and_update, targets_table

    def row(r: dict, starts: str) -> list[str]:
        """The cells of the targets table's row whose target starts with ``starts``."""
        hits = [line for line in targets_table(r).splitlines() if line.startswith(f"| {starts}")]
        assert len(hits) == 1, hits
        return [c.strip() for c in hits[0].strip("|").split("|")]

    r = {"command": {"fraction_of_matmul": 0.9, "speedup_vs_tf1": 1.1}, "modern_fraction_of_matmul": 0.7,
         "peak_rss_mb": 700.0}
    assert row(r, "`aekit reproduce` seed stacked training epoch: fraction")[-1] == "yes"
    assert row(r, "`aekit reproduce` seed stacked training epoch / the tutorial's TF1")[-1] == "no"  # 1.1 < 1.2
    assert row(r, "modern-stacked")[-1] == "yes" and row(r, "peak RSS")[-1] == "no"
    r["command"]["speedup_vs_tf1"] = 1.25
    assert row(r, "`aekit reproduce` seed stacked training epoch / the tutorial's TF1")[-1] == "yes"
    assert "TF1" not in targets_table({"peak_rss_mb": 1.0})  # a run without the peers leaves that target out
    # with the step's parts measured, the fraction target is set against the lower of its two floors
    r.update(seed_step_matmuls_fraction_of_matmul=0.9, seed_step={"matmul_seconds": 3.0, "optimizer_seconds": 0.6},
             seed_step_floor={"one_pass_fraction_of_matmul": 0.8})
    assert matmuls_and_update(r) == 0.9 * 3.0 / 3.6
    fraction = "`aekit reproduce` seed stacked training epoch: fraction"
    assert row(r, fraction)[-3:] == ["0.9", "0.75", "yes"]  # measured past it: still held
    r["command"]["fraction_of_matmul"] = 0.7
    assert row(r, fraction)[-3:] == ["0.7", "0.75", "no; out of reach here"]
    r["seed_step_floor"]["one_pass_fraction_of_matmul"] = 0.95
    r["seed_step"]["optimizer_seconds"] = 0.1
    assert row(r, fraction)[-3:] == ["0.7", "0.871", "no"]  # missed, but within reach


def test_headline_speed_baseline_is_the_tf1_code_when_measured():
    from benchmarks.report import _speed_baseline

    speed = {"reference_samples_per_s": 10.0, "peers": {"tf1": {"skipped": "no tensorflow"}}}
    assert "DataLoader" in _speed_baseline(speed)
    speed["peers"]["tf1"] = {"samples_per_s": 20.0}
    assert "TF1 code, same run" in _speed_baseline(speed)


def test_headline_speed_is_the_median_of_runs_in_turn_with_the_tf1_code():
    from benchmarks.report import _speed, _speed_baseline

    pairs = [{"samples_per_s": s, "tf1_samples_per_s": t, "speedup": s / t} for s, t in ((30.0, 20.0), (10.0, 25.0),
                                                                                        (40.0, 10.0))]
    speed = {"peers": {"tf1": {"samples_per_s": 99.0}},
             "command": {"samples_per_s": 77.0, "fraction_of_matmul": 0.5, "pairs_with_tf1": pairs, "speedup_vs_tf1": 1.5}}
    assert _speed(speed).startswith("30 samples/s (median of 3 runs; 1.50× the TF1 code)")
    assert _speed_baseline(speed).startswith("20 samples/s (TF1 code, in turn")  # not the single run's 99


def test_the_elementwise_floor_counts_the_bytes_and_lowers_the_ceiling():
    from benchmarks.ceiling import ceiling_with_elementwise

    sizes, batch = [20, 8, 4, 8, 20], 16
    r = ceiling_with_elementwise(sizes, batch, matmul_gflops=50.0, limit_gflops=100.0)
    n_weights = 20 * 8 + 8 * 4 + 4 * 8 + 8 * 20 + (8 + 4 + 8 + 20)
    # weights, gradients, mean-squares read + weights, mean-squares written; per layer activation, gradient, delta;
    # the input once for the loss
    assert r["one_pass_bytes"] == 4 * (5 * n_weights + 3 * batch * (8 + 4 + 8 + 20) + batch * 20)
    assert r["eager_seconds"] == pytest.approx(r["activations_seconds"] + r["loss_seconds"] + r["update_seconds"])
    for k in ("eager", "one_pass"):  # time added to the matmuls' can only lower the fraction below theirs (0.5)
        assert 0 < r[f"{k}_fraction_of_matmul"] < 0.5
    assert r["bandwidth_gb_per_s"] > 0


@pytest.mark.slow  # runs aekit in subprocesses
def test_startup_is_timed_in_fresh_processes_beside_the_bare_interpreter():
    from benchmarks.command import startup
    from benchmarks.throughput import targets_table

    st = startup(repeats=1)
    assert st["repeats"] == 1 and 0 < st["python_seconds"] < st["help_seconds"] and st["datasets_seconds"] > 0
    row = [line for line in targets_table({"startup": st}).splitlines() if "--help" in line]
    assert len(row) == 1 and row[0].endswith("| yes |" if st["help_seconds"] <= 0.5 else "| no |")
