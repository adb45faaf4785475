"""The ladder network: its denoising cost trains without labels, tests see a deterministic clean pass,
semi-supervised training learns, and `aekit fewlabels --method ladder` runs the four arms."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import tiny_arrays

from aekit.cli import main
from aekit.errors import ConfigError
from aekit.experiments.overrides import apply_overrides, scale_epochs
from aekit.experiments.presets import get_preset
from aekit.experiments.recipe import Phase, check
from aekit.models.ladder import LadderNetwork
from aekit.runtime import generator
from aekit.training.evaluate import accuracy
from aekit.training.ladder import train_ladder
from aekit.training.optim import hold_linear

CPU = torch.device("cpu")
LADDER = get_preset("pretrain", "ladder")
SMALL = dataclasses.replace(LADDER, hidden_sizes=(32, 16), denoising_costs=(1000.0, 10.0, 0.1, 0.1), steps_per_epoch=10)


def phase(epochs: int) -> Phase:
    return dataclasses.replace(LADDER.train, epochs=epochs)


def test_recipe_names_what_is_wrong():
    with pytest.raises(ConfigError, match=r"denoising_costs has 3 weights; a ladder with 2 hidden layers needs 4"):
        check(dataclasses.replace(SMALL, denoising_costs=(1.0, 1.0, 1.0)))
    with pytest.raises(ConfigError, match=r"noise_level=-0.1 must be a float in the range \[0, inf\)"):
        check(dataclasses.replace(LADDER, noise_level=-0.1))
    with pytest.raises(ConfigError, match=r"finetune.epochs=0 must be an int in the range \[1, 100000\]"):
        apply_overrides(LADDER, {"finetune.epochs": 0})
    with pytest.raises(ConfigError, match=r"draws its batches with replacement: set steps_per_epoch"):
        apply_overrides(LADDER, {"steps_per_epoch": 0})
    with pytest.raises(ConfigError, match=r"dropout, finetune.pseudo_label_weight mean nothing to the ladder network"):
        apply_overrides(LADDER, {"dropout": 0.1, "finetune.pseudo_label_weight": 1})
    with pytest.raises(ConfigError, match=r"denoising_costs and steps_per_epoch are the ladder network's; "
                                          r"architecture='mlp' takes neither"):
        apply_overrides(get_preset("pretrain", "tutorial"), {"steps_per_epoch": 5})
    with pytest.raises(ConfigError, match="denoising_costs=.*finite numbers"):
        apply_overrides(LADDER, {"denoising_costs": "1000,10,nan,0.1,0.1,0.1,0.1"})
    with pytest.raises(ConfigError, match=r"--set denoising_costs=.*must be a tuple of finite numbers >= 0"):
        apply_overrides(LADDER, {"denoising_costs": "1000,10,-1,0.1,0.1,0.1,0.1"})
    r = apply_overrides(LADDER, {"hidden_sizes": "64,32", "denoising_costs": "1000,10,0.1,1e-2"})
    assert r.denoising_costs == (1000.0, 10.0, 0.1, 0.01) and r.hidden_sizes == (64, 32)
    with pytest.raises(ConfigError, match=r"denoising_costs='1000,x': expected a list of numbers"):
        apply_overrides(LADDER, {"denoising_costs": "1000,x"})
    quick = scale_epochs(LADDER, 0.01)  # every epoch count down to one; an epoch stays steps_per_epoch batches
    assert (quick.train.epochs, quick.finetune.epochs, quick.finetune.supervised_epochs) == (1, 1, 1)
    assert check(LADDER) == LADDER


def test_learning_rate_constant_for_a_third_then_linear_to_zero():
    assert [hold_linear(s, 300) for s in (0, 100)] == [1.0, 1.0]
    assert hold_linear(200, 300) == pytest.approx(0.5) and hold_linear(300, 300) == 0.0


def _images(n, seed=0):
    x, y, _, _ = tiny_arrays(n_train=n, seed=seed)
    return x.reshape(n, -1), y


def test_denoising_cost_trains_without_labels():
    x, _ = _images(300)
    net = LadderNetwork(784, 4, SMALL, generator(0))
    xu = torch.as_tensor(x[:100], dtype=torch.float32) / 255

    def cost():
        torch.manual_seed(1)  # the same noise before and after
        parts = net.losses(xu[:0], torch.zeros(0, dtype=torch.long), xu)
        assert parts["cross_entropy"] == 0  # no labels, no cross-entropy
        return float(parts["denoising"].detach())

    before = cost()
    torch.manual_seed(0)
    train_ladder(net, phase(15), CPU, generator(0), unlabeled=x)
    assert cost() < 0.5 * before


def test_clean_pass_is_deterministic_and_per_example():
    x, y = _images(200)
    net = LadderNetwork(784, 4, SMALL, generator(0))
    torch.manual_seed(0)
    train_ladder(net, phase(3), CPU, generator(0), labeled=(x[:40], y[:40]), unlabeled=x[40:])
    xt = torch.as_tensor(x[:50], dtype=torch.float32) / 255
    assert net.stat_updates == 30  # one clean labeled pass per step
    with torch.no_grad():
        pre = xt[:40] @ net.W[0]
    # the test-time statistics follow the labeled images' (the first update replaces the initial (0, 1))
    torch.testing.assert_close(net.running_mean1, pre.mean(dim=0), rtol=0.3, atol=0.3 * pre.std(dim=0).mean().item())
    net.eval()
    with torch.no_grad():
        full = net(xt)
        torch.testing.assert_close(net(xt[:3]), full[:3])  # running statistics: no dependence on the batch
        assert torch.equal(net(xt), full)  # and no noise
    net.train()
    a, b = net.losses(xt[:10], torch.as_tensor(y[:10]).long(), xt[10:]), net.losses(xt[:10], torch.as_tensor(y[:10]).long(), xt[10:])
    assert a["cross_entropy"] != b["cross_entropy"]  # training passes are corrupted, freshly each time


def test_semi_supervised_training_learns_and_keeps_the_best_weights():
    x, y = _images(400)
    xv, yv = _images(100, seed=1)
    labeled = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(4)])  # 3 labels per class
    net = LadderNetwork(784, 4, SMALL, generator(0))
    torch.manual_seed(0)
    result = train_ladder(net, phase(10), CPU, generator(0), labeled=(x[labeled], y[labeled]), unlabeled=x,
                          validation=(xv, yv))
    assert len(result.curve) == 10 and result.validation_accuracy == max(result.curve)  # a check every epoch
    assert accuracy(net, xv, yv, CPU) == result.validation_accuracy > 0.6  # 4 classes: chance is 0.25
    with pytest.raises(ConfigError, match="needs labeled or unlabeled images"):
        train_ladder(net, phase(1), CPU, generator(0))


def test_fewlabels_ladder_command(tiny_npz, tmp_path, capsys):
    out = tmp_path / "ladder"
    small = ["--set", "hidden_sizes=32,16", "--set", "denoising_costs=1000,10,0.1,0.1", "--set", "steps_per_epoch=10",
             "--set", "epochs=2", "--set", "finetune.epochs=2", "--set", "finetune.supervised_epochs=1"]
    args = ["fewlabels", "--method", "ladder", "--dataset", str(tiny_npz), "--labels", "8", "--seeds", "1",
            "--out", str(out), *small]
    assert main(args) == 0
    r = json.loads((out / "fewlabels.json").read_text())
    assert r["method"] == "ladder" and r["config"]["architecture"] == "ladder" and r["config"]["train"]["epochs"] == 2
    details = r["rows"][0]["details"]
    assert set(details) == {"pretrained", "scratch", "pretrained_labels_only", "scratch_semi_supervised"}
    assert details["scratch"]["epochs"] == 10  # the labels-only arms: finetune.supervised_epochs of 10 steps
    for arm, base in (("pretrained", "pretrained_labels_only"), ("scratch_semi_supervised", "scratch")):
        # the semi-supervised result is kept only when it wins on validation; otherwise the labels-only one stands
        if details[arm]["semi_supervised"]:
            assert details[arm]["validation_accuracy"] > details[base]["validation_accuracy"]
            assert details[arm]["epochs"] == 20  # the fine-tuning steps, not the labels-only ones
        else:
            assert details[arm] == details[base]
    assert "ladder network (32-16, pretrained with its denoising cost alone for 20 steps)" in (out / "fewlabels.md").read_text()
    capsys.readouterr()
    assert main([*args[:-len(small)], "--set", "denoising_costs=1,2"]) == 2  # a user's mistake: no traceback
    assert "denoising_costs has 2 weights" in capsys.readouterr().err
    assert main([*args, "--preset", "modern"]) == 2
    assert "--preset is for --method autoencoder" in capsys.readouterr().err
    assert main(["reproduce", "pretrain", "--dataset", str(tiny_npz), "--set", "architecture=ladder",
                 "--out", str(tmp_path / "r")]) == 2
    assert "trained by aekit fewlabels --method ladder" in capsys.readouterr().err
    ladder_from_tutorial = ["--set", "architecture=ladder", "--set", "activation=relu", "--set", "steps_per_epoch=1",
                            "--set", "denoising_costs=1,1,1,1"]  # a valid ladder recipe, for the other method
    assert main(["fewlabels", "--preset", "tutorial", "--dataset", str(tiny_npz), "--out", str(tmp_path / "f"),
                 *ladder_from_tutorial]) == 2
    assert "the ladder network trains with --method ladder only" in capsys.readouterr().err
