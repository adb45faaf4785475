import json

import numpy as np
import pytest

from aekit.cli import main
from aekit.errors import ConfigError
from aekit.experiments.fewlabels import balanced_subset, parse_labels


def test_balanced_subset():
    labels = np.repeat(np.arange(4), 50)
    idx = balanced_subset(labels, 10, seed=0)
    assert len(set(idx)) == 10 and sorted(np.bincount(labels[idx]).tolist()) == [2, 2, 3, 3]
    assert not np.array_equal(idx, balanced_subset(labels, 10, seed=1))
    np.testing.assert_array_equal(idx, balanced_subset(labels, 10, seed=0))
    with pytest.raises(ConfigError, match="need at least one label per class"):
        balanced_subset(labels, 3, 0)


def test_parse_labels():
    assert parse_labels("100, 300,all", 1000) == [100, 300, "all"]
    with pytest.raises(ConfigError, match=r"each entry must be 'all' or an integer in \[1, 1000\]; got '2000'"):
        parse_labels("2000", 1000)


@pytest.fixture
def short_protocol(monkeypatch):
    """The protocol's fine-tunings shortened: these tests check the arms and files, not how long each trains."""
    from aekit.experiments import fewlabels

    monkeypatch.setitem(fewlabels.PROTOCOL, "min_updates", 20)
    monkeypatch.setitem(fewlabels.PROTOCOL, "semi_updates", 40)


def test_fewlabels_command(tiny_npz, tmp_path, capsys, short_protocol):
    out = tmp_path / "fl"
    args = ["fewlabels", "--dataset", str(tiny_npz), "--labels", "8,all", "--seeds", "1", "--out", str(out),
            "--set", "hidden_sizes=32,8", "--set", "epochs=3", "--set", "finetune.epochs=2", "--set", "batch_size=32"]
    assert main(args) == 0
    r = json.loads((out / "fewlabels.json").read_text())
    assert [row["labels"] for row in r["rows"]] == [8, "all"]
    for row in r["rows"]:
        assert 0 <= row["pretrained_accuracy"] <= 1 and 0 <= row["scratch_accuracy"] <= 1
    assert r["rows"][0]["details"]["scratch"]["learning_rate"] in r["learning_rates"]  # tuned on validation
    # The modern recipe is semi-supervised: with 8 labels the other images join fine-tuning, and the two ablations
    # (pretrained on labels alone, scratch semi-supervised) run too; with every label there is nothing unlabeled.
    details = r["rows"][0]["details"]
    assert set(details) == {"pretrained", "scratch", "pretrained_labels_only", "scratch_semi_supervised"}
    assert not details["scratch"]["semi_supervised"] and not details["pretrained_labels_only"]["semi_supervised"]
    if not details["pretrained"]["semi_supervised"]:
        assert details["pretrained"] == details["pretrained_labels_only"]
    assert set(r["rows"][1]["details"]) == {"pretrained", "scratch"}
    assert not any(d["semi_supervised"] for d in r["rows"][1]["details"].values())
    assert r["rows"][1]["details"]["scratch"]["learning_rate"] == r["config"]["finetune"]["learning_rate"]
    md = (out / "fewlabels.md").read_text()
    assert (out / "fewlabels.png").is_file() and "| 8 |" in md and "scratch, semi-supervised" in md
    assert "gain (points)" in capsys.readouterr().out


@pytest.mark.parametrize("semi_val, keeps_semi", [(0.9, True), (0.5, False), (0.7, False)])
def test_compare_arms_keeps_semi_supervised_only_when_better_on_validation(semi_val, keeps_semi):
    """Validation alone decides: the best supervised rate, then semi-supervised only if it beats that."""
    from aekit.experiments.fewlabels import Trial, compare_arms

    supervised = {("p", 0.1): 0.6, ("p", 0.2): 0.7, ("s", 0.1): 0.4, ("s", 0.2): 0.3}
    calls = []

    def trial(start, lr, semi):
        calls.append((start, lr, semi))
        val = semi_val if semi else supervised[(start, lr)]
        return Trial(lr, val, accuracy=val / 2, epochs=1)

    arms = compare_arms(trial, "p", "s", (0.1, 0.2), recipe_rate=0.05, semi=True)
    assert arms["pretrained_labels_only"]["learning_rate"] == 0.2 and arms["scratch"]["learning_rate"] == 0.1
    assert arms["pretrained"]["semi_supervised"] == keeps_semi
    assert arms["pretrained"]["validation_accuracy"] == (semi_val if keeps_semi else 0.7)
    assert arms["scratch_semi_supervised"]["semi_supervised"] == (semi_val > 0.4)
    assert ("p", 0.05, True) in calls and ("s", 0.05, True) in calls  # semi-supervised runs at the recipe's rate


def test_fewlabels_takes_reproduces_preset_and_epochs_scale(tiny_npz, tmp_path, monkeypatch, capsys, short_protocol):
    out = tmp_path / "fl"
    args = ["fewlabels", "--dataset", str(tiny_npz), "--labels", "8", "--seeds", "1", "--out", str(out),
            "--preset", "tutorial", "--epochs-scale", "0.01", "--set", "hidden_sizes=32,8", "--set", "batch_size=32"]
    assert main(args) == 0
    config = json.loads((out / "fewlabels.json").read_text())["config"]
    assert config["finetune"]["optimizer"] == "sgd" and config["train"]["epochs"] == 1  # tutorial's, 100 x 0.01
    assert config["finetune"]["epochs"] == 2  # 200 x 0.01
    monkeypatch.setenv("WORLD_SIZE", "2")
    capsys.readouterr()
    assert main(args + ["--out", str(tmp_path / "fl2")]) == 2  # few-label runs are one process
    assert "runs in one process" in capsys.readouterr().err
    monkeypatch.delenv("WORLD_SIZE")
    assert main(args + ["--set", "finetune.mode=frozen", "--set", "finetune.pseudo_label_weight=1"]) == 2
    assert "finetune.mode='frozen' trains the head alone" in capsys.readouterr().err  # the recipe's rules, first


def test_the_protocol_measures_validation_at_most_about_max_validations_times_per_fine_tuning():
    from aekit.experiments.fewlabels import PROTOCOL, protocol_finetune
    from aekit.experiments.recipe import Finetune

    ft = Finetune(epochs=25, early_stopping=8)
    one_batch = protocol_finetune(ft, labeled_batches=1, unlabeled_batches=None)  # 100 labels in batches of 128
    assert one_batch.epochs == PROTOCOL["min_updates"]  # a step an epoch: the epochs make the updates
    assert one_batch.epochs / one_batch.validate_every <= PROTOCOL["max_validations"]
    assert one_batch.early_stopping >= 3 * one_batch.validate_every  # patience spans several measurements
    many = protocol_finetune(ft, labeled_batches=400, unlabeled_batches=None)
    assert (many.epochs, many.early_stopping, many.validate_every) == (25, 8, 1)  # long epochs: every one measured
    semi = protocol_finetune(ft, labeled_batches=1, unlabeled_batches=430)  # about Fashion-MNIST's training images
    assert semi.validate_every == 1 and semi.epochs * 430 >= PROTOCOL["semi_updates"] > (semi.epochs - 1) * 430
    short = protocol_finetune(ft, labeled_batches=1, unlabeled_batches=3)  # a few hundred unlabeled images
    assert short.epochs * 3 >= PROTOCOL["semi_updates"] and short.epochs / short.validate_every <= PROTOCOL["max_validations"]
