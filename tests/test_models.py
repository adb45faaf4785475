import math

import pytest
import torch

from aekit.errors import ConfigError
from aekit.models.classifier import EncoderClassifier
from aekit.models.stacked import AutoencoderConfig, StackedAutoencoder
from aekit.runtime import generator


def test_seed_stacked_shapes():
    model = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(256, 128)), generator(0))
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert shapes == [(256, 784), (256,), (128, 256), (128,), (256, 128), (256,), (784, 256), (784,)]
    x = torch.rand(5, 784)
    assert model.encode(x).shape == (5, 128)
    assert model.decode(model.encode(x)).shape == (5, 784)
    out = model(x)
    assert out.shape == (5, 784) and out.min() >= 0 and out.max() <= 1


def test_normal_init_is_standard_normal_for_weights_and_biases():
    model = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(256, 128)), generator(1))
    w = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert abs(w.mean().item()) < 0.01 and w.std().item() == pytest.approx(1.0, abs=0.01)
    assert model.encoder[0].bias.detach().std().item() == pytest.approx(1.0, abs=0.15)


def test_same_seed_same_network():
    a = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(8, 4)), generator(3))
    b = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(8, 4)), generator(3))
    c = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(8, 4)), generator(4))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.encoder[0].weight, c.encoder[0].weight)


@pytest.mark.parametrize("init, std", [("xavier", math.sqrt(2) * math.sqrt(2 / (784 + 64))),  # relu's gain
                                       ("kaiming", math.sqrt(2 / 784)), ("torch", 1 / math.sqrt(3 * 784))])
def test_other_inits_have_their_standard_deviation(init, std):
    model = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(64, 16), init=init, activation="relu"), generator(0))
    assert model.encoder[0].weight.std().item() == pytest.approx(std, rel=0.03)  # 50,176 draws


def test_classifier_head_starts_at_zero_and_shares_encoder():
    ae = StackedAutoencoder(AutoencoderConfig(hidden_sizes=(128, 64)), generator(0))
    clf = EncoderClassifier(ae.encoder, 64, 10)
    assert clf.encoder is ae.encoder
    logits = clf(torch.rand(3, 784))
    assert logits.shape == (3, 10) and torch.count_nonzero(logits) == 0


@pytest.mark.parametrize("kwargs, match", [
    ({"activation": "swish"}, "activation='swish' is not allowed; choose one of: sigmoid, relu"),
    ({"init": "he"}, "init='he' is not allowed"),
    ({"hidden_sizes": (0,)}, "must be positive integers"),
    ({"hidden_sizes": ()}, "at least one hidden layer"),
])
def test_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        AutoencoderConfig(**kwargs)
