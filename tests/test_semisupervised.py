"""Semi-supervised fine-tuning: the few labels plus the unlabeled images (reconstruction, pseudo-labels)."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_arrays
from torch import nn

from aekit.data.arrays import Split, from_arrays
from aekit.data.batches import DeviceBatches
from aekit.errors import ConfigError
from aekit.experiments.builders import build_autoencoder
from aekit.experiments.overrides import apply_overrides
from aekit.experiments.presets import get_preset
from aekit.experiments.programs import fine_tune
from aekit.runtime import generator
from aekit.training.objectives import SemiSupervisedObjective, corrupt

CPU = torch.device("cpu")


def _labeled(n=8, d=6, seed=0):
    rng = np.random.default_rng(seed)
    return DeviceBatches(rng.integers(0, 256, (n, d), dtype=np.uint8), rng.integers(0, 3, n).astype(np.int64),
                         batch_size=4, device=CPU, seed=0)


class TrainShift(nn.Module):
    """Pushes class 0 in training mode only, so the test can tell which mode made a prediction."""

    def forward(self, logits):
        return logits + torch.tensor([4.0, 0.0, 0.0]) if self.training else logits


def test_pseudo_labels_are_confident_clean_predictions_learned_under_noise():
    torch.manual_seed(0)
    clf = nn.Sequential(nn.Linear(6, 3), TrainShift())
    with torch.no_grad():
        clf[0].weight.mul_(8)  # some predictions confident, some not
    x_unlabeled = torch.rand(64, 6)
    objective = SemiSupervisedObjective(_labeled(), pseudo_label_weight=2.0, threshold=0.9, noise="mask", noise_level=0.5)
    clf.train()
    torch.manual_seed(1)
    loss, parts = objective(clf, x_unlabeled)
    assert clf.training  # the clean view is taken in eval mode, then training mode comes back

    clf.eval()
    p = clf(x_unlabeled).softmax(1)  # in eval mode
    prior = torch.bincount(objective.labels, minlength=3).float() / len(objective.labels)
    aligned = p * prior / p.mean(0)  # distribution alignment, first step: the running mean is this batch's
    confidence, target = (aligned / aligned.sum(1, keepdim=True)).max(1)  # the target
    keep = confidence >= 0.9
    assert 0 < keep.float().mean() < 1
    clf.train()
    torch.manual_seed(1)
    noisy = corrupt(x_unlabeled, "mask", 0.5)  # the same draw as inside the objective
    student = clf(noisy)  # in training mode
    expected = (F.cross_entropy(student, target, reduction="none") * keep).detach().mean()
    assert not torch.equal(target, student.argmax(1))  # the modes differ, so the check below tells them apart
    assert float(parts["pseudo_label"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(parts["confident_fraction"]) == pytest.approx(float(keep.float().mean()))
    assert float(loss.detach()) == pytest.approx(float(parts["cross_entropy"] + 2.0 * expected), rel=1e-5)

    strict = SemiSupervisedObjective(_labeled(), pseudo_label_weight=2.0, threshold=1.0)
    _, parts = strict(clf, x_unlabeled * 0)  # nothing reaches probability 1: no pseudo-label counts
    assert float(parts["pseudo_label"]) == 0.0


def test_distribution_alignment_spreads_pseudo_labels_over_the_classes():
    torch.manual_seed(0)
    labeled = DeviceBatches(np.zeros((9, 4), np.uint8), np.arange(9) % 3, batch_size=3)  # balanced: 3 of each
    objective = SemiSupervisedObjective(labeled, pseudo_label_weight=1.0)
    logits = torch.randn(300, 3) + torch.tensor([3.0, 0.0, 0.0])  # a classifier that favours class 0
    before = torch.bincount(logits.argmax(1), minlength=3)
    for _ in range(50):  # the running mean settles
        after = torch.bincount(objective.aligned(logits.softmax(1)).argmax(1), minlength=3)
    assert before[0] > 250 and after.min() > 60  # drawn towards the labeled 1/3 each
    np.testing.assert_allclose(objective.aligned(logits.softmax(1)).sum(1), 1, rtol=1e-5)


def test_semi_supervised_objective_rejects_bad_settings():
    with pytest.raises(ConfigError, match=r"pseudo_label_threshold=0 must be in \(0, 1\]"):
        SemiSupervisedObjective(_labeled(), pseudo_label_weight=1.0, threshold=0)
    with pytest.raises(ConfigError, match=r"finetune.pseudo_label_threshold=1.5 must be a float in the range \(0, 1\]"):
        apply_overrides(get_preset("pretrain", "modern"), {"finetune.pseudo_label_threshold": "1.5"})
    with pytest.raises(ConfigError, match="needs the autoencoder"):
        SemiSupervisedObjective(_labeled(), reconstruction_weight=1.0)


@pytest.fixture(scope="module")
def few():
    """20 labeled images and 360 without labels."""
    xtr, ytr, xte, yte = tiny_arrays(n_train=400)
    data = from_arrays("tiny", xtr, ytr, xte, yte)
    labeled = dataclasses.replace(data, train=Split(data.train.images[:20], data.train.labels[:20]))
    return labeled, data.train.images[20:]


@pytest.mark.parametrize("weights", [{"finetune.pseudo_label_weight": 1.0},
                                     {"finetune.reconstruction_weight": 1.0, "finetune.pseudo_label_weight": 0.5}])
def test_fine_tuning_walks_the_unlabeled_images(few, weights):
    data, unlabeled_images = few
    cfg = apply_overrides(get_preset("pretrain", "modern"), {
        "hidden_sizes": (64, 16), "finetune.epochs": 3, "batch_size": 40, "finetune.early_stopping": 0,
        "display_step": 0, "finetune.pseudo_label_threshold": 0.3, **weights})
    ae = build_autoencoder(cfg, data, generator(0), CPU)
    labeled = DeviceBatches(data.train.images, data.train.labels, batch_size=10, device=CPU, seed=1)
    unlabeled = DeviceBatches(unlabeled_images, batch_size=40, device=CPU, seed=2)
    clf, hist = fine_tune(cfg, ae, data, labeled, CPU, generator(1), log=lambda s: None, progress=False,
                          unlabeled=unlabeled)
    parts = hist.parts
    expected = {"cross_entropy", "pseudo_label", "confident_fraction"} | (
        {"reconstruction"} if cfg.finetune.reconstruction_weight else set())
    assert set(parts) == expected and len(hist.epoch_loss) == 3
    total = np.add(parts["cross_entropy"], cfg.finetune.pseudo_label_weight * np.array(parts["pseudo_label"]))
    if "reconstruction" in parts:
        total += cfg.finetune.reconstruction_weight * np.array(parts["reconstruction"])
    np.testing.assert_allclose(hist.epoch_loss, total, rtol=1e-5)
    assert max(parts["confident_fraction"]) > 0  # some pseudo-labels were learned


def test_without_unlabeled_images_fine_tuning_is_supervised(few):
    data, _ = few
    cfg = apply_overrides(get_preset("pretrain", "modern"), {"hidden_sizes": (32, 8), "finetune.epochs": 2, "batch_size": 10,
                                                             "finetune.early_stopping": 0, "display_step": 0,
                                                             "finetune.pseudo_label_weight": 1.0})
    ae = build_autoencoder(cfg, data, generator(0), CPU)
    labeled = DeviceBatches(data.train.images, data.train.labels, batch_size=10, device=CPU, seed=1)
    _, hist = fine_tune(cfg, ae, data, labeled, CPU, generator(1), log=lambda s: None, progress=False)
    assert hist.parts == {} and len(hist.epoch_loss) == 2



def test_runs_are_repeatable_whatever_ran_before(few):
    """Dropout and noise draw from torch's global RNG: each program run seeds it, and gives it back."""
    from aekit.experiments.programs import run_pretrain

    data, _ = few
    cfg = apply_overrides(get_preset("pretrain", "modern"), {"hidden_sizes": (32, 8), "epochs": 2, "finetune.epochs": 2,
                                                             "batch_size": 10, "display_step": 0})  # masking noise, dropout
    quiet = dict(log=lambda s: None, progress=False)
    first = run_pretrain(cfg, data, CPU, seed=3, **quiet).metrics["history"]
    torch.manual_seed(123)
    state = torch.get_rng_state()
    torch.rand(7)  # the caller's own use of the RNG in between
    after = torch.get_rng_state()
    second = run_pretrain(cfg, data, CPU, seed=3, **quiet).metrics["history"]
    assert first["pretrain"]["epoch_loss"] == second["pretrain"]["epoch_loss"]
    assert first["finetune"]["epoch_loss"] == second["finetune"]["epoch_loss"]
    assert torch.equal(torch.get_rng_state(), after) and not torch.equal(state, after)  # the caller's stream is untouched


@pytest.mark.parametrize("shape", [(10, 12), (10, 12, 3)])
def test_cutout_blanks_one_square_of_each_image_across_its_channels(shape):
    from aekit.training.objectives import cutout

    torch.manual_seed(0)
    x = torch.ones(200, int(np.prod(shape)))
    out = cutout(x, shape, 0.5)  # a side of 5 pixels
    blank = (out.view(200, 10, 12, -1) == 0)
    assert bool((blank == blank[..., :1]).all())  # every channel of a pixel alike
    per_image = blank[..., 0].flatten(1).sum(1)
    assert int(per_image.max()) == 25 and int(per_image.min()) >= 9  # a whole square, or its part inside the border
    rows, cols = blank[..., 0].any(2).sum(1), blank[..., 0].any(1).sum(1)
    assert bool((per_image == rows * cols).all())  # a rectangle: the square clipped, never two pieces
    assert torch.equal(cutout(x, shape, 0.0), x)


def test_cutout_belongs_to_pseudo_labels_and_images():
    from aekit.data.tables import from_feature_arrays
    from aekit.experiments.programs import check_fits

    modern = get_preset("pretrain", "modern")
    with pytest.raises(ConfigError, match="finetune.cutout=0.5 changes the view pseudo-labels are learned from; set "
                                          "finetune.pseudo_label_weight above 0"):
        apply_overrides(modern, {"finetune.cutout": "0.5", "finetune.pseudo_label_weight": "0"})
    with pytest.raises(ConfigError, match=r"finetune.cutout=1.0 must be a float in the range \[0, 1\)"):
        apply_overrides(modern, {"finetune.cutout": "1"})
    cfg = apply_overrides(modern, {"finetune.cutout": "0.5"})
    xtr, ytr, xte, yte = tiny_arrays(n_train=50)
    rows = lambda x: x.reshape(len(x), -1)[:, :6].astype("float32") / 85 - 1.5  # noqa: E731
    with pytest.raises(ConfigError, match="finetune.cutout=0.5 blanks a square of each image"):
        check_fits(cfg, from_feature_arrays("rows", rows(xtr), ytr, rows(xte), yte, source="test"))


def test_pseudo_labels_are_learned_from_the_cut_out_view():
    from aekit.training.objectives import Views, cutout

    torch.manual_seed(0)
    clf = nn.Linear(6, 3)
    with torch.no_grad():
        clf.weight.mul_(8)
    x_unlabeled = torch.rand(64, 6)
    objective = SemiSupervisedObjective(_labeled(), pseudo_label_weight=1.0, threshold=0.5, noise="none",
                                        noise_level=0.0, views=Views((2, 3)), cutout=0.5)
    torch.manual_seed(1)
    _, parts = objective(clf, x_unlabeled)
    reference = SemiSupervisedObjective(_labeled(), pseudo_label_weight=1.0, threshold=0.5, noise="none", noise_level=0.0)
    with torch.no_grad():
        confidence, target = reference.aligned(clf(x_unlabeled).softmax(1)).max(1)
    keep = (confidence >= 0.5).float()
    torch.manual_seed(1)
    student = clf(cutout(x_unlabeled, (2, 3), 0.5))  # the same draw as inside the objective
    expected = (F.cross_entropy(student, target, reduction="none") * keep).detach().mean()
    assert float(parts["pseudo_label"]) == pytest.approx(float(expected), rel=1e-5)
    uncut = (F.cross_entropy(clf(x_unlabeled), target, reduction="none") * keep).detach().mean()
    assert float(parts["pseudo_label"]) != pytest.approx(float(uncut))
