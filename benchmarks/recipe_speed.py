"""Training speed of the modern recipes and the conv autoencoder, counted in FLOPs against the matmul limit.

A recipe trains here exactly as ``aekit reproduce`` trains it (``builders.train_autoencoder``: its model, objective
with its noise, and its ``train`` phase's optimizer and schedule), minus the validation early stopping runs between epochs, on the first
``n_images`` training images: one epoch warms up, the next is timed. FLOPs count every multiply-add of the
linear and convolution layers in one forward pass (2 per multiply-add) and triple it for training (the
backward pass costs twice the forward): 6 x weights per sample for an MLP, as for the seed network.
Elementwise work (activations, noise, the optimizer) is not counted: it is what keeps a recipe below the limit.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

CONV = {"architecture": "conv", "hidden_sizes": (32, 64, 128), "activation": "gelu", "code_activation": "identity",
        "init": "kaiming", "batch_size": 128}  # the conv autoencoder, trained by the modern phase (conv_recipe)
CONV_LEARNING_RATE = 2e-3


def forward_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    """FLOPs (2 per multiply-add) of the linear and convolution layers in ``model(x)``, summed over the batch."""
    import torch
    from torch import nn

    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Linear):
            total += 2 * output.numel() * module.in_features
        elif isinstance(module, nn.Conv2d):  # each output element: in_channels/groups x kernel multiply-adds
            total += 2 * output.numel() * module.weight[0].numel()
        elif isinstance(module, nn.ConvTranspose2d):  # each input element scatters over out_channels x kernel
            total += 2 * inputs[0].numel() * module.weight[0].numel()

    handles = [m.register_forward_hook(count) for m in model.modules()
               if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total


def training_flops_per_sample(model: torch.nn.Module, n_features: int) -> float:
    """3 x the forward FLOPs of one sample (forward 2, backward 4 per multiply-add)."""
    import torch

    was = model.training
    model.eval()
    flops = forward_flops(model, torch.zeros(8, n_features)) / 8
    model.train(was)
    return 3 * flops


def recipes() -> dict:
    """The recipes measured: name -> Recipe (its ``train`` phase trains the autoencoder: the pretraining, for
    modern-pretrain)."""
    from aekit.experiments.presets import PRESETS, modern_phase
    from aekit.experiments.recipe import Recipe

    stacked = PRESETS["modern-stacked"]
    return {"modern-stacked": stacked,
            # not a preset: the same recipe at 4x the batch, to show how much of the gap is per-step work
            # (the optimizer's pass over 3 M weights) rather than per-sample work
            "modern-stacked at batch 512 (diagnostic)": dataclasses.replace(stacked, batch_size=512),
            "modern-pretrain (pretraining)": PRESETS["modern-pretrain"],
            # the conv model users train (--preset conv), in fp32 on every CPU: the target is the fp32 limit
            CONV_PRESET: dataclasses.replace(PRESETS["conv-pretrain"], finetune=None, precision="fp32"),
            # a narrower conv autoencoder: its first and last layers (1 -> 32 channels) do little work per byte
            "conv 32-64-128 (diagnostic)": Recipe(**CONV, train=modern_phase(learning_rate=CONV_LEARNING_RATE))}


CONV_PRESET = "conv preset (pretraining, fp32)"
CONV_COLOR = f"{CONV_PRESET}, color 32x32x3 patches"  # the same recipe on the color benchmark's patches


def measure(cfg, data, n_images: int, matmul_gflops: float, seed: int = 0) -> dict:
    """Samples/s, GFLOP/s and the fraction of ``matmul_gflops`` of one timed epoch of ``cfg``'s ``train`` phase on
    ``n_images``."""
    import torch

    from aekit.data.batches import DeviceBatches
    from aekit.experiments.builders import build_autoencoder, train_autoencoder
    from aekit.runtime import generator, seeded_global_rng
    from aekit.training.loop import resolve_precision

    x = data.train.images[:n_images]
    # one epoch per call, no early stopping; tiny data: one batch
    cfg = dataclasses.replace(cfg, batch_size=min(cfg.batch_size, len(x)),
                              train=dataclasses.replace(cfg.train, epochs=1, early_stopping=0))
    device = torch.device("cpu")
    with seeded_global_rng(seed, device):
        model = build_autoencoder(cfg, data, generator(seed), device)
        batches = DeviceBatches(x, batch_size=cfg.batch_size, seed=seed)
        def train():
            return train_autoencoder(model, cfg, data, batches, log=lambda s: None, progress=False)
        train()
        seconds = train().seconds
    samples = len(batches) * cfg.batch_size
    flops = training_flops_per_sample(model, data.n_features)
    gflops = samples / seconds * flops / 1e9
    return {"samples_per_s": samples / seconds, "training_flops_per_sample": flops, "gflops": gflops,
            "fraction_of_matmul": gflops / matmul_gflops, "batch_size": cfg.batch_size, "images": samples,
            "hidden_sizes": list(cfg.hidden_sizes), "architecture": cfg.architecture,
            "precision": resolve_precision(cfg.precision, batches.device)}


def time_to_quality(data, code_size: int = 32, max_epochs: int = 3, seed: int = 0, log=print) -> dict:
    """Seconds of ``aekit reproduce stacked --preset modern --code-size CODE`` training (its model's build, PCA
    fit included, then its epochs) until its test MSE is below PCA's at the same code size. The test MSE is
    read before training and after every epoch, off the clock."""
    import torch

    from aekit.data.batches import DeviceBatches
    from aekit.experiments.builders import build_autoencoder, train_autoencoder
    from aekit.experiments.overrides import with_code_size
    from aekit.experiments.presets import get_preset
    from aekit.runtime import generator, seeded_global_rng
    from aekit.training.evaluate import reconstruction_error
    from benchmarks.quality import pca_mse

    cfg = get_preset("stacked", "modern", code_size, n_train=len(data.train), image_shape=data.image_shape)
    cfg = with_code_size(cfg, code_size)  # as aekit reproduce picks it
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, early_stopping=0))
    pca = pca_mse(data, code_size, seed)
    device = torch.device("cpu")
    points: list[dict] = []
    with seeded_global_rng(seed, device):
        t0 = time.perf_counter()
        model = build_autoencoder(cfg, data, generator(seed), device)
        batches = DeviceBatches(data.train.images, batch_size=cfg.batch_size, seed=seed)
        build, off_clock = time.perf_counter() - t0, 0.0

        def point(epoch: int, seconds: float) -> bool:
            mse = float(reconstruction_error(model, data.test.images, device).mean())
            model.train()
            points.append({"epochs": epoch, "seconds": seconds, "test_mse": mse})
            return mse < pca

        def on_epoch_end(epoch: int, loss: float) -> bool:  # the recipe's whole schedule, stopped once PCA is beaten
            nonlocal off_clock
            t = time.perf_counter()
            beaten = point(epoch + 1, build + t - t_train - off_clock)
            off_clock += time.perf_counter() - t
            return beaten or epoch + 1 >= max_epochs

        if not point(0, build):
            t_train = time.perf_counter()
            train_autoencoder(model, cfg, data, batches, log=lambda s: None, progress=False,
                              on_epoch_end=on_epoch_end)
    first = next((p for p in points if p["test_mse"] < pca), None)
    log(f"    time to quality: PCA {pca:.5f}; " + ", ".join(f"{p['epochs']} ep {p['test_mse']:.5f} at {p['seconds']:.1f} s"
                                                           for p in points))
    return {"code_size": code_size, "pca_test_mse": pca, "points": points,
            "seconds_to_beat_pca": None if first is None else first["seconds"],
            "epochs_to_beat_pca": None if first is None else first["epochs"]}
