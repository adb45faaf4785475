import numpy as np
import pytest
import torch

from aekit.errors import ConfigError
from aekit.training.optim import TF1RMSprop, build_optimizer


def tf1_reference(w, grads, lr, decay=0.9, eps=1e-10, momentum=0.0):
    """ApplyRMSProp written out by hand in float64, one step per gradient."""
    ms, mom = np.ones_like(w), np.zeros_like(w)
    for g in grads:
        ms = decay * ms + (1 - decay) * g * g
        mom = momentum * mom + lr * g / np.sqrt(ms + eps)
        w = w - mom
    return w


def test_first_step_by_hand():
    # ms starts at 1: ms = 0.9 + 0.1 * 4 = 1.3; step = 0.02 * 2 / sqrt(1.3 + 1e-10)
    p = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = TF1RMSprop([p], lr=0.02)
    p.grad = torch.tensor([2.0], dtype=torch.float64)
    opt.step()
    assert p.item() == pytest.approx(1.0 - 0.02 * 2 / np.sqrt(1.3 + 1e-10), rel=1e-14)


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_matches_hand_computed_updates(momentum):
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) * s for s in (1.0, 1e-3, 10.0, 0.0, 1e-6)]
    p = torch.nn.Parameter(torch.tensor(w0))
    b = torch.nn.Parameter(torch.tensor(w0[0]))  # a second parameter exercises the foreach path
    opt = TF1RMSprop([p, b], lr=0.02, momentum=momentum)
    for g in grads:
        p.grad, b.grad = torch.tensor(g), torch.tensor(g[0])
        opt.step()
    expected = tf1_reference(w0, grads, 0.02, momentum=momentum)
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(b.detach().numpy(), expected[0], rtol=1e-12)


def test_differs_from_torch_rmsprop():
    # PyTorch's RMSprop (ms from zeros, eps outside the root) takes a ~3.2x larger first step.
    a = torch.nn.Parameter(torch.zeros(1))
    b = torch.nn.Parameter(torch.zeros(1))
    ta, tb = TF1RMSprop([a], lr=0.02), torch.optim.RMSprop([b], lr=0.02, alpha=0.9)
    a.grad = b.grad = torch.ones(1)
    ta.step()
    tb.step()
    assert abs(b.item()) / abs(a.item()) == pytest.approx(1 / np.sqrt(0.1), rel=1e-3)  # 0.02/sqrt(0.1) vs 0.02/sqrt(1)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_float32_update_is_the_per_parameter_update(momentum):
    """The update over all parameters at once is each parameter's TF1 update in float32, in the same order of ops."""
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(shape, generator=gen)) for shape in ((32, 48), (32,), (8, 32), (8,))]
    ref = [p.detach().clone() for p in params]
    ms, mom = [torch.ones_like(p) for p in ref], [torch.zeros_like(p) for p in ref]
    opt = TF1RMSprop(params, lr=0.02, momentum=momentum)
    for _ in range(5):
        grads = [torch.randn(p.shape, generator=gen) for p in params]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
        for w, m, v, g in zip(ref, ms, mom, grads):
            m.mul_(0.9).addcmul_(g, g, value=0.1)
            step = g / (m + 1e-10).sqrt()
            if momentum:
                v.mul_(momentum).add_(step, alpha=0.02)
                w.sub_(v)
            else:
                w.add_(step, alpha=-0.02)
    for p, w in zip(params, ref):
        torch.testing.assert_close(p.detach(), w, rtol=1e-6, atol=1e-7)


def test_updates_are_visible_to_autograd():
    """A graph that saved a weight before the update refuses to backpropagate after it, as with any in-place op."""
    w = torch.nn.Parameter(torch.randn(4, 3))
    opt = TF1RMSprop([w], lr=0.02)
    held = (w * w).sum()  # saves w for its backward
    w.grad = torch.ones_like(w)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        held.backward()


def test_skips_parameters_without_grad():
    p, q = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = TF1RMSprop([p, q], lr=0.1)
    p.grad = torch.ones(2)
    opt.step()
    assert torch.equal(q.detach(), torch.ones(2)) and not opt.state[q]


@pytest.mark.parametrize("kwargs, match", [
    ({"lr": 0.0}, "learning rate lr=0.0 must be positive"),
    ({"lr": 0.1, "decay": 1.0}, r"decay=1.0 must be in \[0, 1\)"),
])
def test_bad_hyperparameters(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TF1RMSprop([torch.nn.Parameter(torch.ones(1))], **kwargs)


def test_build_optimizer_names():
    params = [torch.nn.Parameter(torch.ones(1))]
    assert isinstance(build_optimizer("rmsprop-tf1", params, 0.1), TF1RMSprop)
    assert isinstance(build_optimizer("sgd", params, 0.5), torch.optim.SGD)
    with pytest.raises(ConfigError, match="optimizer='rmsprop' is not allowed; choose one of: rmsprop-tf1, sgd"):
        build_optimizer("rmsprop", params, 0.1)
