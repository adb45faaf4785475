"""Training objectives: what the model-agnostic loop minimises.

An objective is ``objective(model, *batch)`` returning a scalar loss, or ``(loss, parts)`` where
``parts`` names the terms to report (e.g. a VAE's KL). The variants of the autoencoder family that
differ only in what they minimise live here: denoising (Vincent et al. 2008) corrupts the input
and reconstructs the clean one; sparse autoencoders add an L1 penalty on the codes, or the KL
divergence of the mean code activation from a small target (Ng, CS294A notes).
Noise exists only here, so evaluation never sees it.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from aekit.data.images import channels, shift_fits
from aekit.errors import ConfigError

LOSSES = ("mse", "bce")
NOISES = ("none", "mask", "gaussian")
SPARSITIES = ("none", "l1", "kl")


def reconstruction_loss(model: nn.Module, x: torch.Tensor, *_) -> torch.Tensor:
    """The tutorial's ``reduce_mean((x - x_hat)^2)``: mean over batch and pixels."""
    return mse_of(model, x, x)


def mse_of(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The mean squared error of ``model(x)`` against ``target``."""
    if hasattr(model, "_orig_mod") or not hasattr(model, "encode"):  # torch.compile'd: through its traced forward
        return F.mse_loss(model(x), target)
    return reconstruction_mse(model, model.encode(x), target)


def reconstruction_mse(model: nn.Module, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The mean squared error of ``model.decode(z)`` against ``x``."""
    return F.mse_loss(model.decode(z), x)


def classification_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The tutorial's ``mean(-sum(y * log(softmax)))``, computed stably from logits."""
    return F.cross_entropy(model(x), y)


@dataclass(frozen=True)
class Views:
    """Label-preserving views of flattened images, drawn afresh for each batch: translated by up to ``shift``
    pixels, and mirrored left-right with probability 1/2 when ``flip`` (valid for clothes or
    photos, not for digits or text)."""

    image_shape: tuple[int, ...] = ()
    shift: int = 0
    flip: bool = False

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = translate(x, self.image_shape, self.shift)
        if self.flip:
            b, (h, w) = x.shape[0], self.image_shape[:2]
            images = x.view(b, h, w, -1)
            mirror = torch.rand(b, device=x.device) < 0.5
            x = torch.where(mirror.view(b, 1, 1, 1), images.flip(2), images).reshape(b, -1)
        return x

    @property
    def active(self) -> bool:
        return bool(self.shift or self.flip)


@dataclass(frozen=True)
class ClassificationObjective:
    """Cross-entropy on views of each labeled batch (:class:`Views`)."""

    views: Views

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(self.views(x)), y)


def corrupt(x: torch.Tensor, noise: str, level: float, bounded: bool = True) -> torch.Tensor:
    """Masking zeroes a fraction ``level`` of the inputs (a standardized column's mean); gaussian adds
    N(0, level^2), clipped to [0, 1] where the data is ``bounded`` there."""
    if noise == "mask":
        return x * (torch.rand_like(x) >= level)
    if noise == "gaussian":
        noisy = x + level * torch.randn_like(x)
        return noisy.clamp_(0.0, 1.0) if bounded else noisy
    return x


def translate(x: torch.Tensor, image_shape: tuple[int, ...], shift: int) -> torch.Tensor:
    """Each flattened image (gray, or channels last) moved by its own random offset in [-shift, shift] pixels
    along each axis, the uncovered border filled with zeros; one gather on ``x``'s device (a table row per
    offset)."""
    if shift <= 0:
        return x
    (h, w), c = image_shape[:2], channels(image_shape)
    b = x.shape[0]
    padded = F.pad(x.view(b, h, w, c), (0, 0, shift, shift, shift, shift)).view(b, -1)  # (B, (H + 2s) * (W + 2s) * C)
    table = _shift_table(h, w, c, shift, x.device)  # ((2s + 1)^2, H * W * C)
    offsets = torch.randint(0, table.shape[0], (b,), device=x.device)
    return torch.gather(padded, 1, table[offsets])


def cutout(x: torch.Tensor, image_shape: tuple[int, ...], share: float) -> torch.Tensor:
    """Each flattened image (gray or channels last) with a square of side ``share`` x its shorter side set to 0
    at a random centre, clipped at the border (Cutout, DeVries & Taylor 2017)."""
    if share <= 0:
        return x
    b, (h, w) = x.shape[0], image_shape[:2]
    side = max(1, round(share * min(h, w)))
    top = torch.randint(0, h, (b, 1, 1), device=x.device) - side // 2
    left = torch.randint(0, w, (b, 1, 1), device=x.device) - side // 2
    rows, cols = torch.arange(h, device=x.device).view(1, h, 1), torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)  # (B, H, W)
    return x.view(b, h, w, -1).masked_fill(inside.unsqueeze(-1), 0.0).reshape(b, -1)


@functools.lru_cache(maxsize=16)
def _shift_table(h: int, w: int, c: int, shift: int, device: torch.device) -> torch.Tensor:
    """Row ``dy * (2s + 1) + dx``: where each value of an image moved by (s - dy, s - dx) reads the padded one."""
    k = 2 * shift + 1
    dy = torch.arange(k).view(k, 1, 1, 1, 1)
    dx = torch.arange(k).view(1, k, 1, 1, 1)
    rows, cols = torch.arange(h).view(1, 1, h, 1, 1), torch.arange(w).view(1, 1, 1, w, 1)
    pixel = (dy + rows) * (w + 2 * shift) + dx + cols
    return (pixel * c + torch.arange(c).view(1, 1, 1, 1, c)).reshape(k * k, h * w * c).to(device)


@dataclass(frozen=True)
class ReconstructionObjective:
    loss: str = "mse"  # mse on the output, or bce: binary cross-entropy on the logits (pixels as probabilities)
    noise: str = "none"  # none, mask or gaussian: a denoising autoencoder
    noise_level: float = 0.0  # masked fraction, or the gaussian's standard deviation
    sparsity: str = "none"  # none, l1 (on the codes) or kl (mean activation vs sparsity_target; codes in (0, 1))
    sparsity_weight: float = 0.0
    sparsity_target: float = 0.05
    shift: int = 0  # also translate the input by up to this many pixels (the target stays in place)
    augment_shift: int = 0  # data augmentation: translate input and target together by up to this many pixels
    image_shape: tuple[int, ...] = ()  # (H, W) of the flattened images; needed when either shift > 0
    bounded: bool = True  # the data lies in [0, 1] (pixels), and noisy inputs are clipped to it

    def __post_init__(self):
        for name, value, allowed in (("loss", self.loss, LOSSES), ("noise", self.noise, NOISES),
                                     ("sparsity", self.sparsity, SPARSITIES)):
            if value not in allowed:
                raise ConfigError(f"{name}={value!r} is not allowed; choose one of: {', '.join(allowed)}")
        if self.noise == "mask" and not 0 <= self.noise_level < 1:
            raise ConfigError(f"noise_level={self.noise_level} must be in [0, 1) for masking noise")
        if not 0 < self.sparsity_target < 1:
            raise ConfigError(f"sparsity_target={self.sparsity_target} must be in (0, 1)")
        for name, shift in (("noise_shift", self.shift), ("augment_shift", self.augment_shift)):
            if shift < 0:
                raise ConfigError(f"{name}={shift} must be >= 0 (0 turns it off)")
            if shift and not shift_fits(self.image_shape, shift):
                raise ConfigError(f"{name}={shift} needs images larger than the shift; this data has image "
                                  f"shape {tuple(self.image_shape)}: use {name}=0 for non-image data")

    def __call__(self, model: nn.Module, x: torch.Tensor, *_):
        x = translate(x, self.image_shape, self.augment_shift)  # (B, D) the target: a new image, not a corruption
        x_in = corrupt(translate(x, self.image_shape, self.shift), self.noise, self.noise_level, self.bounded)
        if self.loss == "mse" and (self.sparsity == "none" or self.sparsity_weight == 0):
            return mse_of(model, x_in, x)
        z = model.encode(x_in)  # (B, code)
        if self.loss == "bce":
            decoder_logits = model.decode_logits(z) if hasattr(model, "decode_logits") else None
            if decoder_logits is None:
                raise ConfigError("loss='bce' needs a model with a sigmoid output (output_activation='sigmoid')")
            rec = F.binary_cross_entropy_with_logits(decoder_logits, x)
        else:
            rec = reconstruction_mse(model, z, x)
        if self.sparsity == "none" or self.sparsity_weight == 0:
            return rec
        if self.sparsity == "l1":
            penalty = z.abs().mean()
        else:
            rho_hat = z.mean(dim=0).clamp(1e-6, 1 - 1e-6)  # (code,) mean activation of each unit
            rho = self.sparsity_target
            penalty = (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()
        return rec + self.sparsity_weight * penalty, {"reconstruction": rec.detach(), "sparsity": penalty.detach()}


class SemiSupervisedObjective:
    """Fine-tuning on labeled and unlabeled images at once. The training loop walks the *unlabeled*
    images; each step also draws a labeled batch from ``labeled``. The loss is the cross-entropy on
    the labeled batch plus, on the unlabeled batch:

    - ``reconstruction_weight`` x the autoencoder's reconstruction objective (Ranzato & Szummer 2008):
      the decoder keeps the shared encoder's features true to every image;
    - ``pseudo_label_weight`` x the cross-entropy of the classifier on *corrupted* unlabeled images
      against its own prediction on the clean ones, counted only where that prediction's probability
      is at least ``threshold``. This is Pseudo-Label (Lee 2013), which fine-tuned a denoising
      autoencoder this way, with FixMatch's confidence threshold and weak/strong views (Sohn et al.
      2020); the corruption is the one the denoising autoencoder learned to undo. Before the
      threshold, the predictions go through distribution alignment (ReMixMatch, Berthelot et al.
      2020): each is multiplied by the labeled images' class frequencies over a running mean of the
      predictions, then renormalised, so that the pseudo-labels cannot drift into a few classes. With
      ``cutout``, the corrupted view also has a random square blanked (:func:`cutout`), FixMatch's strong
      view: the classifier must name the image from part of it.

    ``autoencoder`` shares its encoder with the classifier.
    """

    def __init__(self, labeled, *, autoencoder: nn.Module | None = None, reconstruction=None,
                 reconstruction_weight: float = 0.0, pseudo_label_weight: float = 0.0, threshold: float = 0.95,
                 noise: str = "mask", noise_level: float = 0.25, views: Views | None = None, cutout: float = 0.0):
        if not 0 < threshold <= 1:
            raise ConfigError(f"pseudo_label_threshold={threshold} must be in (0, 1]")
        if reconstruction_weight and (autoencoder is None or reconstruction is None):
            raise ConfigError("reconstruction_weight needs the autoencoder and its reconstruction objective")
        self.autoencoder, self.reconstruction, self.reconstruction_weight = autoencoder, reconstruction, reconstruction_weight
        self.pseudo_label_weight, self.threshold, self.noise, self.noise_level = pseudo_label_weight, threshold, noise, noise_level
        self.labeled, self.steps, self.views, self.cutout = labeled, 0, views or Views(), cutout
        self.stream = self._stream(0)
        self.labels = labeled.y  # (N,) the class frequencies pseudo-labels are aligned to
        self.prior: torch.Tensor | None = None  # (K,) those frequencies, once K is known
        self.mean_prediction: torch.Tensor | None = None  # (K,) running mean of the unlabeled predictions

    def _stream(self, start: int):
        """The labeled batches from step ``start`` on: epoch after epoch of the labeled images."""
        per_epoch = len(self.labeled)
        batches = itertools.chain.from_iterable(self.labeled.epoch(e) for e in itertools.count(start // per_epoch))
        return itertools.islice(batches, start % per_epoch, None)

    def state_dict(self) -> dict:
        """Where the labeled stream stands and the running mean prediction: what a resumed run needs."""
        return {"steps": self.steps, "prior": self.prior, "mean_prediction": self.mean_prediction}

    def load_state_dict(self, state: dict) -> None:
        self.steps, self.prior, self.mean_prediction = state["steps"], state["prior"], state["mean_prediction"]
        device = self.labels.device
        self.prior = None if self.prior is None else self.prior.to(device)
        self.mean_prediction = None if self.mean_prediction is None else self.mean_prediction.to(device)
        self.stream = self._stream(self.steps)

    def aligned(self, probabilities: torch.Tensor) -> torch.Tensor:
        """Distribution alignment of (B, K) probabilities; updates the running mean."""
        batch_mean = probabilities.mean(dim=0)
        if self.mean_prediction is None:  # the first batch: K is known now
            k = probabilities.shape[1]
            self.prior = torch.bincount(self.labels, minlength=k).to(probabilities) / len(self.labels)
            self.mean_prediction = batch_mean
        else:
            self.mean_prediction = self.mean_prediction.lerp(batch_mean, 0.01)
        p = probabilities * self.prior / self.mean_prediction.clamp_min(1e-6)
        return p / p.sum(dim=1, keepdim=True)

    def __call__(self, classifier: nn.Module, x_unlabeled: torch.Tensor, *_):
        x, y = next(self.stream)  # (B, D), (B,)
        self.steps += 1
        ce = F.cross_entropy(classifier(self.views(x)), y)
        loss, parts = ce, {"cross_entropy": ce.detach()}
        if self.reconstruction_weight:
            rec = self.reconstruction(self.autoencoder, x_unlabeled)
            rec = rec[0] if isinstance(rec, tuple) else rec
            loss = loss + self.reconstruction_weight * rec
            parts["reconstruction"] = rec.detach()
        if self.pseudo_label_weight:
            with torch.no_grad():  # the clean view, as at test time (no dropout): the target
                training = classifier.training
                classifier.eval()
                confidence, target = self.aligned(classifier(x_unlabeled).softmax(dim=1)).max(dim=1)  # (B,), (B,)
                classifier.train(training)
            keep = (confidence >= self.threshold).float()
            noisy = corrupt(self.views(x_unlabeled), self.noise, self.noise_level)
            if self.cutout:
                noisy = cutout(noisy, self.views.image_shape, self.cutout)
            pl = (F.cross_entropy(classifier(noisy), target, reduction="none") * keep).mean()
            loss = loss + self.pseudo_label_weight * pl
            parts.update(pseudo_label=pl.detach(), confident_fraction=keep.mean())
        return loss, parts
