"""The C kernels (aekit.native) and the fused steps built on them (aekit.training.fused): each must give
PyTorch's numbers, and every way the kernel can be missing must fall back to PyTorch, not fail."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from aekit import native
from aekit.models.stacked import AutoencoderConfig, StackedAutoencoder
from aekit.training import fused
from aekit.training.objectives import ReconstructionObjective, reconstruction_loss
from aekit.training.optim import TF1RMSprop

HAS_CC = native.compiler() is not None


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty kernel cache, and load() asked afresh (it remembers its answer per process)."""
    monkeypatch.setenv("AEKIT_CACHE", str(tmp_path))
    native._load.cache_clear()
    yield tmp_path / "native"
    native._load.cache_clear()


def _net(seed=0, size=48, hidden=(32, 8)):
    return StackedAutoencoder(AutoencoderConfig(input_size=size, hidden_sizes=hidden), torch.Generator().manual_seed(seed))


def _train(model, opt, steps=12, objective=reconstruction_loss):
    x = torch.rand(64, model.config.input_size, generator=torch.Generator().manual_seed(1))
    for _ in range(steps):
        opt.zero_grad()
        objective(model, x).backward()
        opt.step()


@pytest.mark.skipif(not HAS_CC, reason="no C compiler: the kernels cannot be built here")
def test_kernel_compiles_once_into_the_cache_atomically(fresh_cache):
    lib = native.load("rmsprop_tf1")
    assert lib is not None
    built = sorted(p.name for p in fresh_cache.iterdir())
    assert len(built) == 1 and built[0].startswith("rmsprop_tf1-") and built[0].endswith(".so")  # no temp file left
    native._load.cache_clear()
    stamp = (fresh_cache / built[0]).stat().st_mtime_ns
    assert native.load("rmsprop_tf1") is not None
    assert (fresh_cache / built[0]).stat().st_mtime_ns == stamp  # found, not rebuilt


@pytest.mark.skipif(not HAS_CC, reason="no C compiler: the kernels cannot be built here")
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("shape", [(48, (32, 8)), (784, (128,))])  # the second is above the kernel's threading size
def test_native_tf1_rmsprop_matches_the_foreach_update(momentum, shape):
    assert native.load("rmsprop_tf1") is not None
    a, b = _net(0, *shape), _net(0, *shape)
    opt_a = TF1RMSprop(a.parameters(), lr=0.02, momentum=momentum)
    opt_b = TF1RMSprop(b.parameters(), lr=0.02, momentum=momentum, native=False)
    _train(a, opt_a)
    _train(b, opt_b)
    moved = max((p - q).abs().max().item() for p, q in zip(a.parameters(), _net(0, *shape).parameters()))
    assert moved > 1e-6  # the updates did something (small: TF1 starts the mean squares at one)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(opt_a.state[p]["ms"], opt_b.state[q]["ms"], rtol=1e-5, atol=1e-8)


@pytest.mark.skipif(not HAS_CC, reason="no C compiler: the kernels cannot be built here")
def test_kernel_writes_are_visible_to_autograd():
    """A graph that saved a weight before the kernel changed it must refuse to backpropagate, as with torch ops."""
    model = _net()
    opt = TF1RMSprop(model.parameters(), lr=0.02)
    _train(model, opt, steps=1)
    w = next(model.parameters())
    before = w._version
    held = (w * w).sum()  # saves w for its backward
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    assert w._version > before
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        held.backward()


def test_an_unwritable_cache_falls_back_to_a_temporary_one(fresh_cache, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("AEKIT_CACHE", str(blocker / "cache"))  # cannot be created, even by root
    monkeypatch.setattr(native.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    lib = native.load("rmsprop_tf1")
    assert (lib is not None) == HAS_CC  # no exception either way
    if HAS_CC:
        assert list((tmp_path / "tmp").rglob("rmsprop_tf1-*.so"))


def test_without_the_kernel_every_path_still_trains(fresh_cache, monkeypatch):
    """AEKIT_NATIVE=0, a compiler that fails, and tensors the kernel does not take all fall back to PyTorch."""
    reference = _net()
    _train(reference, TF1RMSprop(reference.parameters(), lr=0.02, native=False))
    monkeypatch.setenv("AEKIT_NATIVE", "0")
    assert native.load("rmsprop_tf1") is None
    model = _net()
    _train(model, TF1RMSprop(model.parameters(), lr=0.02))
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    monkeypatch.delenv("AEKIT_NATIVE")
    if HAS_CC:
        assert native.load("rmsprop_tf1") is not None
        with native.turned_off():
            assert native.load("rmsprop_tf1") is None
        assert native.load("rmsprop_tf1") is not None
    native._load.cache_clear()
    monkeypatch.setenv("CC", "false")  # a "compiler" that always fails
    monkeypatch.setenv("AEKIT_CACHE", str(fresh_cache.parent / "other"))
    assert native.load("rmsprop_tf1") is None and native.load("mse") is None and native.load("sigmoid") is None
    assert not list((fresh_cache.parent / "other" / "native").iterdir())  # nothing half-written left behind
    z, t = torch.randn(4, 6, requires_grad=True), torch.rand(4, 6)
    torch.testing.assert_close(fused.sigmoid_mse(z, t), F.mse_loss(torch.sigmoid(z), t))


@pytest.mark.skipif(not HAS_CC, reason="no C compiler: the kernels cannot be built here")
def test_sigmoid_mse_gives_pytorchs_loss_and_gradient():
    assert native.load("mse") is not None
    gen = torch.Generator().manual_seed(0)
    z = (3 * torch.randn(300, 500, generator=gen)).requires_grad_()  # big enough to run on two threads
    t = torch.rand(300, 500, generator=gen)
    loss = fused.sigmoid_mse(z, t)
    assert loss.grad_fn is not None and "SigmoidMSE" in type(loss.grad_fn).__name__  # the kernel ran
    (3.0 * loss).backward()
    z2 = z.detach().clone().requires_grad_()
    ref = F.mse_loss(torch.sigmoid(z2), t)
    (3.0 * ref).backward()
    torch.testing.assert_close(loss, ref, rtol=1e-6, atol=0)
    torch.testing.assert_close(z.grad, z2.grad, rtol=1e-5, atol=1e-12)
    # what the kernel does not take goes to PyTorch: bf16 logits, a target that needs its own gradient
    for zz, tt in ((z.detach().bfloat16().requires_grad_(), t.bfloat16()),
                   (z.detach().requires_grad_(), t.clone().requires_grad_()),
                   (z.detach()[:, ::2].requires_grad_(), t[:, ::2])):  # non-contiguous
        out = fused.sigmoid_mse(zz, tt)
        assert "SigmoidMSE" not in type(out.grad_fn).__name__
        torch.testing.assert_close(out.float(), F.mse_loss(torch.sigmoid(zz), tt).float())
    empty = torch.zeros(0, 5, requires_grad=True)
    assert torch.isnan(fused.sigmoid_mse(empty, torch.zeros(0, 5)))  # as F.mse_loss: nan, not a crash
    # no silent second derivative through the kernel
    (g,) = torch.autograd.grad(fused.sigmoid_mse(z, t), z, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|differentiate|does not require grad"):
        g.sum().backward()


def test_reconstruction_losses_equal_the_mse_of_the_output():
    """The fused path of the objectives is the tutorial's reduce_mean((x - x_hat)^2), gradients included."""
    model, x = _net(), torch.rand(16, 48)
    for objective in (reconstruction_loss, ReconstructionObjective()):
        a = copy.deepcopy(model)
        objective(a, x).backward()
        b = copy.deepcopy(model)
        F.mse_loss(b(x), x).backward()
        for p, q in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-9)
    linear = StackedAutoencoder(AutoencoderConfig(input_size=48, hidden_sizes=(8,), output_activation="identity"))
    torch.testing.assert_close(reconstruction_loss(linear, x), F.mse_loss(linear(x), x))  # no sigmoid: plain MSE


@pytest.mark.skipif(not (HAS_CC and sys.platform.startswith("linux")), reason="reads /proc/self/maps (Linux)")
def test_kernels_bring_no_second_openmp_runtime(tmp_path):
    """Two OpenMP runtimes in one process fight over the cores: loading the kernels must map none that PyTorch's
    import had not already mapped (a fresh process and a fresh cache, so the kernels are compiled and loaded)."""
    script = (
        "import os, torch\n"
        "def runtimes():\n"
        "    names = ('libgomp', 'libomp', 'libiomp')\n"
        "    with open(f'/proc/{os.getpid()}/maps') as f:\n"
        "        return {l.split()[-1] for l in f if os.path.basename(l.split()[-1]).startswith(names)}\n"
        "before = runtimes()\n"
        "from aekit import native\n"
        "assert None not in (native.load('rmsprop_tf1'), native.load('mse'), native.load('sigmoid'))\n"
        "print(sorted(before), sorted(runtimes() - before))\n"
    )
    env = {**os.environ, "AEKIT_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("[]"), out.stdout  # nothing new


def test_batches_are_gathered_and_scaled_as_pytorch_does():
    from aekit.data.tensors import gather_float, to_float

    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (1000, 784), dtype=torch.uint8, generator=gen)
    idx = torch.randperm(1000, generator=gen)[:300]  # big enough to run on two threads
    want = to_float(x.index_select(0, idx))
    if HAS_CC:
        assert native.load("gather") is not None
    assert torch.equal(gather_float(x, idx), want)  # bit for bit
    with native.turned_off():
        assert torch.equal(gather_float(x, idx), want)
    with pytest.raises(IndexError, match="row index 1000 is out of range for 1000 rows"):
        gather_float(x, torch.tensor([3, 1000]))
    floats = torch.rand(10, 4, generator=gen)
    assert torch.equal(gather_float(floats, torch.tensor([2, 0])), floats[[2, 0]])  # float data: PyTorch's path
