"""Each member of the autoencoder family trains, and its defining property holds."""

import dataclasses

import numpy as np
import pytest
import torch
from conftest import tiny_arrays

import aekit
from aekit.data.arrays import from_arrays
from aekit.data.batches import DeviceBatches
from aekit.experiments.overrides import apply_overrides
from aekit.experiments.presets import MODERN_MLP, get_preset
from aekit.experiments.programs import run_pretrain, run_stacked
from aekit.experiments.recipe import check
from aekit.models.conv import ConvAutoencoder, ConvAutoencoderConfig
from aekit.models.stacked import AutoencoderConfig, StackedAutoencoder
from aekit.models.vae import VAE, VAEConfig, vae_objective
from aekit.runtime import generator
from aekit.training.evaluate import encode, reconstruction_error
from aekit.training.greedy import blocks, greedy_pretrain
from aekit.training.loop import fit
from aekit.training.objectives import ReconstructionObjective, corrupt, translate
from aekit.training.optim import build_optimizer

CPU = torch.device("cpu")
QUIET = dict(log=lambda s: None, progress=False)


@pytest.fixture(scope="module")
def tiny():
    xtr, ytr, xte, yte = tiny_arrays(n_train=400)
    return from_arrays("tiny", xtr, ytr, xte, yte)


def _adam_fit(model, objective, x, epochs=15, lr=3e-3):
    return fit(model, objective, build_optimizer("adamw", model.parameters(), lr), DeviceBatches(x, batch_size=40),
               epochs, display_step=0, progress=False)


def test_tied_weights_share_storage():
    model = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(32, 8), tied=True, activation="gelu", init="kaiming"), generator(0))
    untied = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(32, 8), activation="gelu", init="kaiming"), generator(0))
    enc = [m for m in model.encoder if isinstance(m, torch.nn.Linear)]
    assert model.decoder.encoder_layers[0] is enc[-1]
    assert model.decoder.encoder_layers[-1].weight.data_ptr() == enc[0].weight.data_ptr()
    def n(m):
        return sum(p.numel() for p in m.parameters())
    assert n(untied) - n(model) == 784 * 32 + 32 * 8  # no decoder weight matrices of its own
    model(torch.rand(4, 784)).sum().backward()
    assert enc[0].weight.grad is not None  # the decoder's gradient lands on the shared weights
    x = tiny_arrays()[0].reshape(300, -1)
    hist = _adam_fit(model, ReconstructionObjective(), x, epochs=5)
    assert hist.epoch_loss[-1] < hist.epoch_loss[0]


def test_noise_only_in_training():
    x = torch.rand(64, 784)
    masked = corrupt(x, "mask", 0.5)
    assert 0.4 < (masked == 0).float().mean() < 0.6 and torch.equal(corrupt(x, "none", 0.5), x)
    noisy = corrupt(x, "gaussian", 0.3)
    assert noisy.min() >= 0 and noisy.max() <= 1 and not torch.equal(noisy, x)
    model = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(32, 8), activation="gelu", init="kaiming"), generator(0))
    denoising = ReconstructionObjective(noise="mask", noise_level=0.5)
    torch.manual_seed(0)
    assert not torch.equal(denoising(model, x), denoising(model, x))  # the objective corrupts, freshly each time
    images = tiny_arrays()[2].reshape(60, -1)
    _adam_fit(model, denoising, tiny_arrays()[0].reshape(300, -1), epochs=3)
    a, b = reconstruction_error(model, images, CPU), reconstruction_error(model, images, CPU)
    np.testing.assert_array_equal(a, b)  # evaluation sees clean inputs: deterministic


def test_shift_noise_moves_each_image_within_range():
    torch.manual_seed(0)
    x = torch.zeros(400, 7, 9)
    x[:, 3, 4] = 1.0  # one lit pixel in the middle of every image
    moved = translate(x.reshape(400, -1), (7, 9), 2).view(400, 7, 9)
    assert torch.equal(moved.sum(dim=(1, 2)), torch.ones(400))  # moved, not lost: it stays inside the frame
    where = moved.flatten(1).argmax(dim=1)
    dy, dx = where // 9 - 3, where % 9 - 4
    assert dy.abs().max() == 2 and dx.abs().max() == 2  # every offset within [-2, 2], the extremes reached
    assert len(set(zip(dy.tolist(), dx.tolist()))) == 25  # and each image draws its own offset
    edge = torch.zeros(100, 7, 9)
    edge[:, :, 0] = 1.0  # the left column lit
    kept = translate(edge.reshape(100, -1), (7, 9), 2).sum(dim=1)
    assert kept.min() == 0 and kept.max() == 7  # pushed off the frame it is gone, not wrapped round
    assert torch.equal(translate(x.reshape(400, -1), (7, 9), 0), x.reshape(400, -1))


def test_shift_noise_needs_images():
    with pytest.raises(aekit.ConfigError, match=r"noise_shift=2 .*image shape \(\).*noise_shift=0"):
        ReconstructionObjective(shift=2)
    with pytest.raises(aekit.ConfigError, match=r"noise_shift=-1 must be an int in the range \[0, inf\)"):
        apply_overrides(get_preset("stacked"), {"noise_shift": "-1"})
    model = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(32, 8), activation="gelu", init="kaiming"), generator(0))
    objective = ReconstructionObjective(noise="mask", noise_level=0.1, shift=2, image_shape=(28, 28))
    x = tiny_arrays()[0].reshape(300, -1)
    hist = _adam_fit(model, objective, x, epochs=4)
    assert hist.epoch_loss[-1] < hist.epoch_loss[0]


class _Identity(torch.nn.Module):
    """encode and decode pass the input through: the loss is then how far the target is from the input."""

    def encode(self, x):
        return x

    def decode(self, z):
        return z


def test_augmentation_moves_the_target_with_the_input():
    x = torch.as_tensor(tiny_arrays()[0][:200].reshape(200, -1), dtype=torch.float32) / 255  # (200, 784)
    torch.manual_seed(0)
    augmented = ReconstructionObjective(augment_shift=2, image_shape=(28, 28))(_Identity(), x)
    torch.manual_seed(0)
    denoising = ReconstructionObjective(shift=2, image_shape=(28, 28))(_Identity(), x)
    assert augmented == 0  # input and target are the same moved image
    assert denoising > 1e-3  # noise_shift keeps the target in place: the same model is penalised
    with pytest.raises(aekit.ConfigError, match=r"augment_shift=1 .*image shape \(784,\).*augment_shift=0"):
        ReconstructionObjective(augment_shift=1, image_shape=(784,))
    with pytest.raises(aekit.ConfigError, match=r"augment_shift=-1 must be an int in the range \[0, inf\)"):
        apply_overrides(get_preset("stacked"), {"augment_shift": "-1"})
    with pytest.raises(aekit.ConfigError, match="augment_shift=1 is for the reconstruction objective; architecture='vae'"):
        check(dataclasses.replace(get_preset("stacked"), architecture="vae", augment_shift=1))


@pytest.mark.parametrize("kind, act", [("l1", "relu"), ("kl", "sigmoid")])
def test_sparse_codes_are_sparser(kind, act):
    x = tiny_arrays()[0].reshape(300, -1)
    codes = {}
    for weight in (0.0, 1.0 if kind == "l1" else 0.5):
        model = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(64, 32), activation="gelu", code_activation=act,
                                                     init="kaiming"), generator(0))
        objective = ReconstructionObjective(sparsity=kind, sparsity_weight=weight, sparsity_target=0.05)
        hist = _adam_fit(model, objective, x, epochs=20)
        codes[weight] = encode(model, x, CPU)
    plain, sparse = codes.values()
    if kind == "l1":
        assert (sparse <= 1e-6).mean() > (plain <= 1e-6).mean() + 0.1  # more exact zeros
    else:
        assert abs(sparse.mean() - 0.05) < abs(plain.mean() - 0.05) / 2  # mean activation near the target
    assert "sparsity" in hist.parts


def test_vae_reports_kl_and_makes_figures(tiny, tmp_path):
    cfg = apply_overrides(get_preset("stacked", "modern"), {"architecture": "vae", "hidden_sizes": (64, 4), "epochs": 4,
                                                            "batch_size": 40})
    result = run_stacked(cfg, tiny, CPU, **QUIET)
    parts = result.metrics["history"]["train"]["parts"]
    assert set(parts) >= {"kl", "reconstruction"} and all(k > 0 for k in parts["kl"])
    assert isinstance(result.autoencoder, VAE)
    from aekit.outputs import write_run

    write_run(result, tmp_path, tiny)
    assert (tmp_path / "samples.png").is_file() and (tmp_path / "interpolation.png").is_file()
    back = aekit.load(tmp_path)
    x = torch.rand(3, 784)
    torch.testing.assert_close(back(x), result.autoencoder.eval()(x))


def test_vae_objective_terms():
    vae = VAE(VAEConfig(hidden_sizes=(32,), latent_size=4), generator(0))
    loss, parts = vae_objective(vae, torch.rand(8, 784))
    assert torch.isclose(loss, parts["reconstruction"] + parts["kl"]) and parts["kl"] >= 0


def test_greedy_layerwise_leaves_earlier_layers_unchanged():
    model = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(32, 8), activation="sigmoid", init="xavier"), generator(0))
    first = blocks(model.encoder)[0][0]
    snapshots = {}
    x = tiny_arrays()[0].reshape(300, -1)
    before = first.weight.detach().clone()
    greedy_pretrain(model, DeviceBatches(x, batch_size=50), 3, lambda p: build_optimizer("adamw", p, 1e-2),
                    progress=False, log=lambda s: None, on_layer_done=lambda i: snapshots.setdefault(i, first.weight.detach().clone()))
    assert not torch.equal(before, snapshots[0])  # layer 1 trained in its own stage
    assert torch.equal(snapshots[0], snapshots[1])  # and stayed put while layer 2 trained
    assert torch.equal(snapshots[1], first.weight)


def test_conv_autoencoder(tiny, tmp_path):
    model = ConvAutoencoder(ConvAutoencoderConfig(image_shape=(28, 28), channels=(8, 16), code_size=16), generator(0))
    assert model.encode(torch.rand(5, 784)).shape == (5, 16) and model(torch.rand(5, 784)).shape == (5, 784)
    odd = ConvAutoencoder(ConvAutoencoderConfig(image_shape=(9, 7), channels=(4,), code_size=3), generator(0))
    assert odd(torch.rand(2, 63)).shape == (2, 63)
    cfg = apply_overrides(get_preset("stacked", "modern"), {"architecture": "conv", "hidden_sizes": (8, 16, 16),
                                                            "epochs": 3, "batch_size": 40})
    result = run_stacked(cfg, tiny, CPU, **QUIET)
    hist = result.metrics["history"]["train"]["epoch_loss"]
    assert hist[-1] < hist[0]
    result.autoencoder.save(tmp_path)
    assert isinstance(aekit.load(tmp_path), ConvAutoencoder)


def test_bce_loss_and_early_stopping(tiny):
    cfg = apply_overrides(MODERN_MLP, {"hidden_sizes": (64, 16), "epochs": 30, "batch_size": 40, "loss": "bce",
                                       "early_stopping": 2, "learning_rate": 3e-2, "schedule": "constant"})
    result = run_stacked(cfg, tiny, CPU, **QUIET)
    hist = result.metrics["history"]["train"]
    val = hist["parts"]["validation_mse"]
    assert len(hist["epoch_loss"]) < 30  # stopped early
    assert hist["parts"]["validation_epochs"] == list(range(1, len(hist["epoch_loss"]) + 1))  # after every epoch
    assert len(val) == len(hist["epoch_loss"]) and min(val) == pytest.approx(
        float(reconstruction_error(result.autoencoder, tiny.validation.images, CPU).mean()), rel=1e-5)  # best restored
    assert result.curves["reconstruction"].validation() == ("mse", hist["parts"]["validation_epochs"], val)


def test_loss_figure_draws_the_validation_score_beside_the_training_loss(tmp_path, monkeypatch):
    from aekit import figures

    drawn = {}
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.update(axes=fig.axes))
    figures.loss_curves({"pretraining": [0.5, 0.3, 0.2], "fine-tuning": [2.0, 1.0]}, tmp_path / "loss.png",
                        validation={"fine-tuning": ("error", [1, 2], [0.3, 0.1])})
    panels = {ax.get_title(): ax for ax in drawn["axes"] if ax.get_title()}
    twins = [ax for ax in drawn["axes"] if ax.get_ylabel() == "validation error"]
    assert set(panels) == {"pretraining", "fine-tuning"} and len(twins) == 1
    assert list(twins[0].lines[0].get_xdata()) == [1, 2] and list(panels["fine-tuning"].lines[0].get_xdata()) == [1, 2]


@pytest.mark.parametrize("mode", ["full", "frozen", "scratch"])
def test_finetune_modes(tiny, mode):
    cfg = apply_overrides(get_preset("pretrain", "modern"), {"hidden_sizes": (64, 16), "epochs": 3, "finetune.epochs": 4,
                                                             "finetune.mode": mode, "batch_size": 40,
                                                             "finetune.early_stopping": 0,
                                                             "finetune.pseudo_label_weight": 0.0})
    result = run_pretrain(cfg, tiny, CPU, **QUIET)
    enc_pre = [p for n, p in result.autoencoder.named_parameters() if n.startswith("encoder")]
    enc_clf = list(result.classifier.encoder.parameters())
    same = all(torch.equal(a, b) for a, b in zip(enc_pre, enc_clf))
    assert same == (mode == "frozen")  # only a linear probe leaves the pretrained encoder as it was
    assert (result.metrics["history"]["pretrain"]["epoch_loss"] == []) == (mode == "scratch")
    assert result.metrics["test_accuracy"] > 0.5


def test_pca_residual_starts_as_pca(tiny):
    from sklearn.decomposition import PCA

    from aekit.experiments.builders import build_autoencoder

    cfg = dataclasses.replace(get_preset("stacked", "modern"), hidden_sizes=(64, 8))
    model = build_autoencoder(cfg, tiny, generator(0), CPU).eval()
    x = tiny.test.images / 255.0
    pca = PCA(8, svd_solver="full").fit(tiny.train.images / 255.0)  # exact: the randomized solver draws from np.random
    expected = np.clip(pca.inverse_transform(pca.transform(x)), 0, 1)
    got = model(torch.as_tensor(x, dtype=torch.float32)).detach().numpy()
    # Untrained, it is PCA clipped to the pixel range (compared by error: tiny noisy data has near-equal eigenvalues).
    assert float(((got - x) ** 2).mean()) == pytest.approx(float(((expected - x) ** 2).mean()), rel=1e-3)
    val_before = float(reconstruction_error(model, tiny.validation.images, CPU).mean())
    result = run_stacked(apply_overrides(cfg, {"epochs": 5, "batch_size": 40}), tiny, CPU, **QUIET)
    val_after = float(reconstruction_error(result.autoencoder, tiny.validation.images, CPU).mean())
    assert val_after <= val_before + 1e-9  # early stopping scores the start too: never worse on validation
