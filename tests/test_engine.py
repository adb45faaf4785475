"""The fast path (device-resident uint8 batches, the TF1 RMSProp update over all parameters at once, on-device
loss sums) gives the same numbers as a plain eager loop written the obvious way."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_arrays

from aekit.data.batches import DeviceBatches
from aekit.errors import ConfigError
from aekit.models.stacked import AutoencoderConfig, StackedAutoencoder
from aekit.runtime import available_cpus, generator
from aekit.training.loop import fit
from aekit.training.objectives import reconstruction_loss
from aekit.training.optim import TF1RMSprop


def plain_eager_curve(model, images, batches, epochs, lr=0.02, decay=0.9, eps=1e-10):
    """Float images from NumPy, one parameter at a time, .item() every step."""
    ms = {id(p): torch.ones_like(p) for p in model.parameters()}
    curve = []
    for epoch in range(epochs):
        losses = []
        for idx in batches.permutation(epoch).view(len(batches), batches.batch_size).numpy():
            x = torch.tensor(images[idx].astype(np.float32) / np.float32(255))
            loss = F.mse_loss(model(x), x)
            model.zero_grad()
            loss.backward()
            with torch.no_grad():
                for p in model.parameters():
                    m = ms[id(p)]
                    m.mul_(decay).add_((1 - decay) * p.grad * p.grad)
                    p.sub_(lr * p.grad / torch.sqrt(m + eps))
            losses.append(loss.item())
        curve.append(float(np.mean(losses)))
    return curve


def test_fast_path_matches_plain_eager_loop():
    images = tiny_arrays(n_train=400)[0].reshape(400, -1)
    model = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(64, 16)), generator(11))
    reference = copy.deepcopy(model)
    batches = DeviceBatches(images, batch_size=50, seed=3)
    fast = fit(model, reconstruction_loss, TF1RMSprop(model.parameters(), lr=0.02), batches, 6,
               display_step=0, progress=False).epoch_loss
    slow = plain_eager_curve(reference, images, batches, 6)
    np.testing.assert_allclose(fast, slow, rtol=1e-5)
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_bf16_autocast_trains():
    images = tiny_arrays()[0].reshape(300, -1)
    model = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(64, 16), init="xavier"), generator(0))
    hist = fit(model, reconstruction_loss, torch.optim.Adam(model.parameters(), lr=1e-2), DeviceBatches(images, batch_size=50),
               8, display_step=0, progress=False, precision="bf16")
    assert hist.epoch_loss[-1] < 0.7 * hist.epoch_loss[0]


def test_auto_precision_takes_bf16_only_where_the_hardware_multiplies_it(monkeypatch):
    import aekit.runtime as runtime
    from aekit.training.loop import resolve_precision

    for flags, expected in ((frozenset(), "fp32"), (frozenset({"avx2", "fma"}), "fp32"),
                            (frozenset({"avx512f", "amx_bf16"}), "bf16"), (frozenset({"avx512_bf16"}), "bf16")):
        monkeypatch.setattr(runtime, "_cpu_flags", lambda flags=flags: flags)
        assert resolve_precision("auto", "cpu") == expected
        assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    for cap, expected in (("AVX2", "fp32"), ("avx512_core", "fp32"), ("AVX512_CORE_BF16", "bf16")):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)  # oneDNN capped below its bf16 products emulates them
        assert resolve_precision("auto", "cpu") == expected
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: frozenset({"avx2"}))
    images = tiny_arrays()[0].reshape(300, -1)
    model = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(64, 16), init="xavier"), generator(0))
    seen = []
    model.encoder.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    fit(model, reconstruction_loss, torch.optim.Adam(model.parameters(), lr=1e-2), DeviceBatches(images, batch_size=50),
        1, display_step=0, progress=False, precision="auto")
    assert set(seen) == {torch.float32}  # no bf16 hardware: auto trained in fp32


def test_metrics_record_the_precision_auto_resolved_to(tiny_npz, tmp_path, monkeypatch):
    import json

    import aekit.runtime as runtime
    from aekit.cli import main

    for flags, expected in ((frozenset({"avx2"}), "fp32"), (frozenset({"amx_bf16"}), "bf16")):
        monkeypatch.setattr(runtime, "_cpu_flags", lambda flags=flags: flags)
        out = tmp_path / expected
        assert main(["reproduce", "stacked", "--dataset", str(tiny_npz), "--out", str(out), "--preset", "modern",
                     "--set", "epochs=1", "--set", "hidden_sizes=32,8", "--no-progress"]) == 0
        m = json.loads((out / "stacked" / "metrics.json").read_text())
        assert m["config"]["precision"] == "auto" and m["precision"] == expected
        assert (m["torch"], m["device"], m["compile"]) == (torch.__version__, "cpu", False)  # the rest of the arithmetic


def test_the_presets_know_the_loops_precisions():
    """presets keeps its own list (it imports no torch); it must name exactly the loop's."""
    from aekit.experiments import recipe
    from aekit.training import loop

    assert recipe.PRECISIONS == tuple(loop.PRECISIONS)


def test_bad_precision():
    model = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(4,)), generator(0))
    with pytest.raises(ConfigError, match="precision='fp8' is not allowed; choose one of: fp32, bf16, fp16"):
        fit(model, reconstruction_loss, TF1RMSprop(model.parameters()), DeviceBatches(np.zeros((4, 784), np.uint8), batch_size=2),
            1, precision="fp8")


def test_early_stopping_scores_validation_in_the_training_precision():
    from aekit.data.arrays import Dataset, Split
    from aekit.experiments.builders import validation_mse

    tr, _, te, _ = tiny_arrays()
    flat = lambda a: Split(a.reshape(len(a), -1), None)  # noqa: E731
    data = Dataset(name="tiny", train=flat(tr), validation=flat(te), test=flat(te), image_shape=(28, 28))
    model = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(64, 16), init="xavier"), generator(0))
    fp32, bf16 = (validation_mse(model, data, "cpu", p)() for p in ("fp32", "bf16"))
    assert fp32 != bf16 and bf16 == pytest.approx(fp32, rel=1e-2)  # computed in bf16, and close to fp32's
    with pytest.raises(ConfigError, match="precision='fp8' is not allowed"):
        validation_mse(model, data, "cpu", "fp8")()


def test_early_stop_callback():
    images = tiny_arrays()[0].reshape(300, -1)
    model = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(8,)), generator(0))
    seen = []
    hist = fit(model, reconstruction_loss, TF1RMSprop(model.parameters(), lr=0.02), DeviceBatches(images, batch_size=100), 10,
               display_step=0, progress=False, on_epoch_end=lambda e, loss: seen.append((e, loss)) or e == 2)
    assert len(hist.epoch_loss) == 3 and [e for e, _ in seen] == [0, 1, 2]
    assert seen[-1][1] == pytest.approx(hist.epoch_loss[-1])


def test_early_stopping_every_k_epochs_measures_validation_after_every_kth_only():
    from aekit.training.loop import EarlyStopping

    model = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(4,)), generator(0))
    scores = iter([5.0, 4.0, 3.0, 3.5, 3.5, 3.5, 3.5])  # the start, then one per measurement
    measured = []
    early = EarlyStopping(model, lambda: measured.append(len(measured)) or next(scores), patience=6, every=3).start()
    stops = [early(epoch, 0.0) for epoch in range(12)]
    assert early.history == [4.0, 3.0, 3.5, 3.5]  # after epochs 3, 6, 9 and 12 (0-based 2, 5, 8, 11)
    assert early.best_epoch == 5 and stops.index(True) == 11  # 6 epochs without a better score, counted in epochs
    assert len(measured) == 5 and early.measured == [3, 6, 9, 12]  # the start, then after these epochs only

    scores = iter([5.0, 4.0, 3.0])
    early = EarlyStopping(model, lambda: next(scores), patience=8, every=4, epochs=6).start()
    [early(epoch, 0.0) for epoch in range(6)]
    assert early.history == [4.0, 3.0] and early.best_epoch == 5  # after epoch 4 and the last, 6: never left out


def test_validate_every_needs_a_patience_at_least_as_long():
    from aekit.experiments.overrides import apply_overrides
    from aekit.experiments.presets import get_preset

    modern = get_preset("stacked", "modern")  # train.early_stopping=5
    assert apply_overrides(modern, {"train.validate_every": "5"}).train.validate_every == 5
    with pytest.raises(ConfigError, match=r"train.validate_every=6 spaces early stopping's validation; it needs "
                                          r"train.early_stopping \(the patience, in epochs\) at least as large, got 5"):
        apply_overrides(modern, {"train.validate_every": "6"})
    with pytest.raises(ConfigError, match="finetune.validate_every=2 .* got 0"):
        apply_overrides(get_preset("pretrain", "tutorial"), {"finetune.validate_every": "2"})


@pytest.mark.parametrize("quota, expected", [("max 100000", 4), ("150000 100000", 1), ("250000 100000", 2),
                                             ("50000 100000", 1), (None, 4)])
def test_available_cpus_takes_the_affinity_capped_by_the_cgroup_quota(monkeypatch, quota, expected):
    import os
    from pathlib import Path

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    real = Path.read_text

    def read_text(self, *a, **kw):
        if str(self) == "/sys/fs/cgroup/cpu.max":
            if quota is None:
                raise FileNotFoundError(self)
            return quota + "\n"
        return real(self, *a, **kw)
    monkeypatch.setattr(Path, "read_text", read_text)
    assert available_cpus() == expected
