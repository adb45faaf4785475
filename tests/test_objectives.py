"""The objectives run the models' own modules: PyTorch's losses and gradients, every module hook fires, and
torch.func transforms go through them."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_arrays

from aekit.models.classifier import EncoderClassifier
from aekit.models.stacked import AutoencoderConfig, StackedAutoencoder
from aekit.training.objectives import ReconstructionObjective, classification_loss, reconstruction_loss


def _net(size=48, hidden=(32, 8), seed=0, **kw):
    return StackedAutoencoder(AutoencoderConfig(input_size=size, hidden_sizes=hidden, **kw),
                              torch.Generator().manual_seed(seed))


def test_reconstruction_losses_equal_the_mse_of_the_output():
    """The tutorial's reduce_mean((x - x_hat)^2), gradients included, bit for bit."""
    model, x = _net(), torch.rand(16, 48, generator=torch.Generator().manual_seed(1))
    for objective in (reconstruction_loss, ReconstructionObjective()):
        a, b = copy.deepcopy(model), copy.deepcopy(model)
        loss = objective(a, x)
        ref = F.mse_loss(b(x), x)
        assert torch.equal(loss, ref)
        loss.backward()
        ref.backward()
        assert all(torch.equal(p.grad, q.grad) for p, q in zip(a.parameters(), b.parameters()))
    for kw in ({"tied": True}, {"output_activation": "identity"}):
        other = _net(**kw)
        assert torch.equal(reconstruction_loss(other, x), F.mse_loss(other(x), x))


def test_classification_loss_is_pytorchs_cross_entropy():
    clf = EncoderClassifier.from_autoencoder(_net(), 10, "normal", torch.Generator().manual_seed(2))
    gen = torch.Generator().manual_seed(3)
    x, y = torch.rand(7, 48, generator=gen), torch.randint(0, 10, (7,), generator=gen)
    assert torch.equal(classification_loss(clf, x, y), F.cross_entropy(clf(x), y))
    ignored = y.clone()
    ignored[::3] = -100  # F.cross_entropy's ignore_index
    assert torch.equal(classification_loss(clf, x, ignored), F.cross_entropy(clf(x), ignored))
    with pytest.raises(IndexError):
        classification_loss(clf, x, torch.full((7,), 10))  # a label beyond the classes is refused


def test_module_hooks_run_in_the_objectives():
    model, x = _net(), torch.rand(16, 48)
    seen = []
    handles = [model.encoder[1].register_forward_hook(lambda m, i, out: seen.append(("forward", out.shape))),
               model.decoder[0].register_full_backward_hook(lambda m, gi, go: seen.append(("backward", go[0].shape)))]
    try:
        reconstruction_loss(model, x).backward()
        ReconstructionObjective(noise="mask", noise_level=0.3)(model, x).backward()
    finally:
        for h in handles:
            h.remove()
    assert seen == [("forward", (16, 32)), ("backward", (16, 32))] * 2
    clf = EncoderClassifier.from_autoencoder(model, 3)
    everywhere = torch.nn.modules.module.register_module_forward_hook(lambda m, i, out: seen.append(m))
    try:
        seen.clear()
        classification_loss(clf, x, torch.zeros(16, dtype=torch.int64))
    finally:
        everywhere.remove()
    assert clf.head in seen and model.encoder[0] in seen


def test_torch_func_grad_goes_through_reconstruction_loss():
    """torch.func transforms see plain PyTorch ops: grad of the loss as a function of the weights is autograd's."""
    model, x = _net(), torch.rand(8, 48, generator=torch.Generator().manual_seed(4))
    loss = _Loss(model)
    params = {k: v.detach() for k, v in loss.named_parameters()}
    grads = torch.func.grad(lambda p: torch.func.functional_call(loss, p, (x,)))(params)
    reconstruction_loss(model, x).backward()
    for name, p in loss.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-6, atol=0)


class _Loss(torch.nn.Module):
    """``reconstruction_loss`` of ``model`` as a module, for torch.func.functional_call."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return reconstruction_loss(self.model, x)


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 3)])
def test_views_mirror_some_images_left_right_and_keep_the_rest(shape):
    from aekit.training.objectives import Views

    torch.manual_seed(0)
    x = torch.rand(64, torch.Size(shape).numel())
    out = Views(shape, flip=True)(x)
    images, seen = x.view(64, 5, 7, -1), out.view(64, 5, 7, -1)
    mirrored = torch.tensor([torch.equal(s, i.flip(1)) for s, i in zip(seen, images)])
    kept = torch.tensor([torch.equal(s, i) for s, i in zip(seen, images)])
    assert bool((mirrored | kept).all()) and 16 < int(mirrored.sum()) < 48
    assert not Views(shape).active and torch.equal(Views(shape)(x), x)


def test_fine_tuning_takes_views_and_refuses_them_on_tables():
    import dataclasses

    from aekit.data.arrays import from_arrays
    from aekit.data.tables import from_feature_arrays
    from aekit.errors import ConfigError
    from aekit.experiments import presets
    from aekit.experiments.programs import check_fits, run_pretrain
    from aekit.experiments.recipe import check

    xtr, ytr, xte, yte = tiny_arrays(n_train=200)
    color = lambda x: np.repeat(x[..., None], 3, axis=3)  # noqa: E731
    cfg = presets.get_preset("pretrain", "tutorial")
    cfg = check(dataclasses.replace(cfg, hidden_sizes=(32, 8), batch_size=32, train=dataclasses.replace(cfg.train, epochs=1),
                                    finetune=dataclasses.replace(cfg.finetune, epochs=3, augment_shift=1, augment_flip=True)))
    for data in (from_arrays("tiny", xtr, ytr, xte, yte), from_arrays("color", color(xtr), ytr, color(xte), yte)):
        result = run_pretrain(cfg, data, torch.device("cpu"), seed=0, log=lambda s: None, progress=False)
        assert 0 <= result.metrics["test_accuracy"] <= 1 and len(result.metrics["history"]["finetune"]["epoch_loss"]) == 3
    rows = lambda x: x.reshape(len(x), -1)[:, :6].astype("float32") / 85 - 1.5  # noqa: E731  measurements, not pixels
    table = from_feature_arrays("rows", rows(xtr), ytr, rows(xte), yte, source="test")
    with pytest.raises(ConfigError, match="finetune.augment_shift=1 needs images"):
        check_fits(cfg, table)


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 3)])
def test_translation_moves_every_channel_of_an_image_together(shape):
    """Each moved image equals its original shifted by one offset in [-1, 1]^2, every channel alike, with zeros
    where the border was uncovered; across a batch several offsets occur."""
    from aekit.training.objectives import translate

    torch.manual_seed(0)
    h, w = shape[:2]
    x = torch.rand(64, *shape) + 1  # no zeros: a zero in the output is the padded border
    moved = translate(x.reshape(64, -1), shape, 1).view(64, h, w, -1)
    images = x.view(64, h, w, -1)
    padded = F.pad(images, (0, 0, 1, 1, 1, 1))
    seen = set()
    for out, pad in zip(moved, padded):
        offsets = [(dy, dx) for dy in range(3) for dx in range(3) if torch.equal(out, pad[dy:dy + h, dx:dx + w])]
        assert len(offsets) == 1, "not one shift of the whole image"
        seen.add(offsets[0])
    assert len(seen) > 3
