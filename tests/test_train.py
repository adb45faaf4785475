import numpy as np
import pytest
import torch
from conftest import tiny_arrays

from aekit.data.batches import DeviceBatches, to_float
from aekit.errors import ConfigError
from aekit.models.classifier import EncoderClassifier
from aekit.models.stacked import AutoencoderConfig, StackedAutoencoder
from aekit.runtime import generator
from aekit.training.evaluate import accuracy, encode, reconstruction_error
from aekit.training.loop import fit
from aekit.training.objectives import classification_loss, reconstruction_loss
from aekit.training.optim import TF1RMSprop


def test_to_float_scales_like_input_data():
    x = torch.tensor([0, 1, 128, 255], dtype=torch.uint8)
    out = to_float(x)
    assert out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy(), np.array([0, 1, 128, 255], np.float32) * np.float32(1 / 255))


def test_batches_are_gathered_and_scaled_as_to_float_does():
    from aekit.data.tensors import gather_float

    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (1000, 784), dtype=torch.uint8, generator=gen)
    idx = torch.randperm(1000, generator=gen)[:300]
    got = gather_float(x, idx)
    assert got.dtype == torch.float32 and torch.equal(got, to_float(x.index_select(0, idx)))  # bit for bit
    np.testing.assert_array_equal(got.numpy(), x.numpy()[idx.numpy()].astype(np.float32) * np.float32(1 / 255))
    with pytest.raises(IndexError):
        gather_float(x, torch.tensor([3, 1000]))
    floats = torch.rand(10, 4, generator=gen)
    assert torch.equal(gather_float(floats, torch.tensor([2, 0])), floats[[2, 0]])  # float data: as it is


def test_batches_per_epoch_and_reshuffle():
    b = DeviceBatches(np.arange(1000).reshape(1000, 1).astype(np.uint8), np.arange(1000), batch_size=256)
    assert len(b) == 3  # int(1000 / 256), the remainder is dropped
    e0 = torch.cat([y for _, y in b.epoch(0)])
    e1 = torch.cat([y for _, y in b.epoch(1)])
    assert len(e0) == 768 and len(set(e0.tolist())) == 768  # no repeats within an epoch
    assert not torch.equal(e0, e1)
    assert torch.equal(e0, torch.cat([y for _, y in b.epoch(0)]))  # an epoch's order is a pure function of it


def test_shards_are_disjoint_and_cover_the_permutation():
    y = np.arange(100)
    one = DeviceBatches(np.zeros((100, 2), np.uint8), y, batch_size=8)
    shards = [DeviceBatches(np.zeros((100, 2), np.uint8), y, batch_size=8, rank=r, world_size=4) for r in range(4)]
    for epoch in (3, 4):
        per_rank = [[lab for _, lab in s.epoch(epoch)] for s in shards]
        assert all(len(p) == len(one) == 12 and all(len(b) == 2 for b in p) for p in per_rank)  # equal step counts
        for b, whole in enumerate(lab for _, lab in one.epoch(epoch)):  # each global batch, split over the ranks
            assert torch.equal(torch.cat([p[b] for p in per_rank]), whole)
    e3 = torch.cat([lab for _, lab in shards[0].epoch(3)])
    assert not torch.equal(e3, torch.cat([lab for _, lab in shards[0].epoch(4)]))  # shards change between epochs


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size=0 must be a positive integer"),
    ({"batch_size": 20}, "batch_size=20 is larger than the 10 training images"),
    ({"batch_size": 3, "world_size": 2}, "batch_size=3 does not split evenly over 2 processes"),
    ({"batch_size": 2, "rank": 2, "world_size": 2}, r"rank=2 must be in \[0, world_size=2\)"),
])
def test_batch_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        DeviceBatches(np.zeros((10, 4), np.uint8), **kwargs)


def _tiny_ae(seed=0, hidden=(32, 8)):
    return StackedAutoencoder(AutoencoderConfig(hidden_sizes=hidden), generator(seed))


def test_a_few_steps_lower_the_loss():
    xtr, ytr, xte, _ = tiny_arrays()
    model = _tiny_ae()
    batches = DeviceBatches(xtr.reshape(len(xtr), -1), batch_size=32, seed=0)
    before = reconstruction_error(model, xte.reshape(len(xte), -1), torch.device("cpu")).mean()
    # N(0, 1) sigmoids start saturated and sit on a plateau for ~10 epochs, as in the tutorial.
    hist = fit(model, reconstruction_loss, TF1RMSprop(model.parameters(), lr=0.02), batches, 20,
               display_step=100, log=lambda s: None, progress=False)
    after = reconstruction_error(model, xte.reshape(len(xte), -1), torch.device("cpu")).mean()
    assert len(hist.epoch_loss) == 20 and len(hist.last_batch_loss) == 20
    assert hist.epoch_loss[-1] < hist.epoch_loss[0]
    assert after < 0.6 * before


def test_same_seed_same_curve():
    xtr = tiny_arrays()[0].reshape(300, -1)
    curves = []
    for _ in range(2):
        model = _tiny_ae(seed=5)
        b = DeviceBatches(xtr, batch_size=50, seed=5)
        curves.append(fit(model, reconstruction_loss, TF1RMSprop(model.parameters(), lr=0.02), b, 3,
                          display_step=0, progress=False).epoch_loss)
    assert curves[0] == curves[1]


def test_display_step_prints_last_batch_loss():
    xtr = tiny_arrays()[0].reshape(300, -1)
    lines = []
    model = _tiny_ae()
    hist = fit(model, reconstruction_loss, TF1RMSprop(model.parameters(), lr=0.02),
               DeviceBatches(xtr, batch_size=50), 7, display_step=3, log=lines.append, progress=False, label="loss")
    assert [line.split()[1] for line in lines] == ["0", "3", "6"]
    assert lines[-1].endswith(f"{hist.last_batch_loss[6]:.6f}")


def test_fine_tuning_learns_the_classes():
    xtr, ytr, xte, yte = tiny_arrays()
    xtr, xte = xtr.reshape(300, -1), xte.reshape(60, -1)
    ae = _tiny_ae()
    clf = EncoderClassifier(ae.encoder, 8, 4)
    batches = DeviceBatches(xtr, ytr, batch_size=30)
    fit(clf, classification_loss, torch.optim.SGD(clf.parameters(), lr=0.5), batches, 15, display_step=0, progress=False)
    assert accuracy(clf, xte, yte, torch.device("cpu")) > 0.9
    assert encode(ae, xte, torch.device("cpu")).shape == (60, 8)
