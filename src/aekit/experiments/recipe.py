"""The recipe: one typed description of how a model is built and trained, and everything that checks it.

A :class:`Recipe` holds the model (architecture and its sizes), the reconstruction objective, run-wide
settings (precision, batch size) and its phases of training: ``train``, the autoencoder's training (its
pretraining, in the pretrain program), and, in the pretrain program only, ``finetune``, the encoder plus
a softmax head on the labels. Both phases are a :class:`Phase`; fine-tuning adds a few fields of its own
(:class:`Finetune`). The defaults are the tutorial's.

Every dataclass has one constraint table (:data:`CONSTRAINTS`: type, range or choices per field), and the
rules that tie fields together live in :func:`cross_field_errors`; :func:`check` runs both for the whole
recipe and raises the first problem as one line, before any work. What depends on the data (labels, image
shape, the batch against the number of images) is checked once the data is open, still before training
(:func:`aekit.experiments.programs.check_fits`).

The ladder network (``architecture="ladder"``, ``aekit fewlabels --method ladder``) is described by the same
recipe: its hidden sizes, Gaussian noise, per-layer denoising costs, and phases counted in epochs of
``steps_per_epoch`` batches drawn with replacement (pretraining in ``train``, the semi-supervised training in
``finetune``; the labels-only arms train ``finetune.supervised_epochs``).
"""

from __future__ import annotations

import dataclasses
from collections import ChainMap
from dataclasses import dataclass, field

from aekit.constraints import Interval, Options, Sizes, Weights, describe_violation
from aekit.errors import ConfigError
from aekit.models.layers import ACTIVATIONS, INITS
from aekit.models.registry import ARCHITECTURES
from aekit.training.objectives import LOSSES, NOISES, SPARSITIES
from aekit.training.optim import OPTIMIZERS, SCHEDULES

FINETUNE_MODES = ("full", "frozen", "scratch")
PRECISIONS = ("fp32", "bf16", "fp16", "auto")  # training.loop.PRECISIONS says what each one does
MAX_EPOCHS = 100_000  # per phase; more is a typo (or a run of months)
MAX_LEARNING_RATE = 1e30  # far above any useful rate; much larger ones overflow float32 updates
# The one network that is not an autoencoder: a ladder network (aekit.models.ladder), a classifier with a denoising
# decoder at every layer, trained by ``aekit fewlabels --method ladder`` only. Its recipe is a Recipe like any
# other; the fields below mean nothing to it and keep their defaults.
LADDER = {"ladder": "aekit fewlabels --method ladder"}
LADDER_UNUSED = ("code_activation", "init", "tied", "dropout", "batch_norm", "loss", "noise_shift", "augment_shift",
                 "sparsity", "sparsity_weight", "sparsity_target", "layerwise_epochs", "precision")
LADDER_UNUSED_FINETUNE = ("mode", "head_init", "reconstruction_weight", "pseudo_label_weight",
                          "pseudo_label_threshold", "cutout", "augment_shift", "augment_flip",
                          "early_stopping", "validate_every")


@dataclass(frozen=True)
class Phase:
    """One phase of training: an optimizer over a number of epochs."""

    epochs: int = 50  # passes over the training images
    optimizer: str = "rmsprop-tf1"  # rmsprop-tf1 (the tutorial's, TF1 semantics), sgd, adam, adamw
    learning_rate: float = 0.02  # the learning rate (the peak, under a schedule)
    weight_decay: float = 0.0  # weight decay (decoupled, for adamw)
    schedule: str = "constant"  # learning rate per batch: constant, cosine, onecycle, hold-linear
    early_stopping: int = 0  # patience (epochs) on the validation metric, restoring the best weights; 0 = off
    validate_every: int = 0  # early stopping measures validation every this many epochs; 0 = every epoch


@dataclass(frozen=True)
class Finetune(Phase):
    """The pretrain program's second phase: encoder + softmax head on the labeled images (early stopping on
    validation accuracy). The defaults are the tutorial's plain gradient descent."""

    epochs: int = 200  # passes over the labeled images (the tutorial's num_epochs + 100)
    optimizer: str = "sgd"  # as for train (the tutorial's tf.train.GradientDescentOptimizer)
    learning_rate: float = 0.5  # as for train
    mode: str = "full"  # full; frozen (the head only: a linear probe); scratch (no pretraining at all)
    supervised_epochs: int = 0  # aekit fewlabels: the labels-only arms' epochs; 0 = as many as epochs
    head_init: str = "zeros"  # the softmax layer's init: zeros (the tutorial's tf.zeros), or one of init's
    # Semi-supervised fine-tuning, where some training images have no label:
    reconstruction_weight: float = 0.0  # keep reconstructing the unlabeled images; 0 = off
    pseudo_label_weight: float = 0.0  # learn the unlabeled images' confident predictions under noise; 0 = off
    pseudo_label_threshold: float = 0.95  # the probability a prediction needs to become a pseudo-label
    cutout: float = 0.0  # the pseudo-labels' learning view: a random square this share of the image side blanked; 0 = off
    # Views of each training image, labeled or not (2-D images only):
    augment_shift: int = 0  # translated by up to this many pixels; 0 = off
    augment_flip: bool = False  # mirrored left-right at random (clothes, photos; not digits or text)


@dataclass(frozen=True)
class Recipe:
    """How the autoencoder is built and trained; with ``finetune``, the pretrain program's recipe."""

    # the model
    architecture: str = "mlp"  # mlp; conv (hidden_sizes[:-1] are channels); vae; conv-vae; pca-residual; ladder (fewlabels only)
    hidden_sizes: tuple[int, ...] = (256, 128)  # encoder widths; the last is the code size
    activation: str = "sigmoid"  # relu, gelu, selu, sigmoid, tanh, identity
    code_activation: str = ""  # on the code; "" means the same as activation
    init: str = "normal"  # normal is N(0, 1) weights and biases (tf.random_normal); xavier, kaiming, torch
    tied: bool = False  # decoder weights are the encoder's, transposed
    dropout: float = 0.0  # after hidden activations
    batch_norm: bool = False  # before hidden activations
    # the reconstruction objective
    loss: str = "mse"  # mse, or bce (binary cross-entropy with logits)
    noise: str = "none"  # denoising: none, mask or gaussian
    noise_level: float = 0.0  # masked fraction, or gaussian standard deviation
    noise_shift: int = 0  # denoising also translates each input by up to this many pixels (images); 0 = off
    augment_shift: int = 0  # each training image and its target moved by up to this many pixels; 0 = off
    sparsity: str = "none"  # sparse codes: none, l1 or kl
    sparsity_weight: float = 0.0  # the weight of the sparsity penalty
    sparsity_target: float = 0.05  # target mean activation of a code unit, for kl sparsity
    layerwise_epochs: int = 0  # greedy layer-wise pretraining epochs per layer before train; 0 = off
    denoising_costs: tuple[float, ...] = ()  # ladder: the denoising cost's weight at the input, each hidden layer, the top
    # the run
    precision: str = "fp32"  # fp32; bf16 / fp16 autocast; auto: bf16 where the hardware multiplies it
    batch_size: int = 256  # images per step (at most the number of training images)
    steps_per_epoch: int = 0  # ladder: an epoch is this many batches drawn with replacement; 0 = one pass (autoencoders)
    display_step: int = 5  # print the loss every this many epochs; 0 = never
    examples_to_show: int = 10  # test images in the reconstruction figure
    # the phases
    train: Phase = field(default_factory=Phase)  # the autoencoder's training (pretraining, in program 2)
    finetune: Finetune | None = None  # the pretrain program's fine-tuning; None in the stacked program

    @property
    def program(self) -> str:
        return "stacked" if self.finetune is None else "pretrain"


NONNEGATIVE = Interval(float, 0, None)
OFF_OR_MORE = Interval(int, 0, None)
POSITIVE = Interval(int, 1, None)
PHASE_CONSTRAINTS = {
    "epochs": Interval(int, 1, MAX_EPOCHS),
    "optimizer": Options(OPTIMIZERS),
    "learning_rate": Interval(float, 0, MAX_LEARNING_RATE, closed="right"),
    "weight_decay": NONNEGATIVE,
    "schedule": Options(SCHEDULES),
    "early_stopping": OFF_OR_MORE,
    "validate_every": Interval(int, 0, MAX_EPOCHS),
}
CONSTRAINTS: dict[type, dict] = {
    Phase: PHASE_CONSTRAINTS,
    Finetune: {
        **PHASE_CONSTRAINTS,
        "mode": Options(FINETUNE_MODES),
        "supervised_epochs": Interval(int, 0, MAX_EPOCHS),
        "head_init": Options(("zeros", *INITS)),
        "reconstruction_weight": NONNEGATIVE,
        "pseudo_label_weight": NONNEGATIVE,
        "pseudo_label_threshold": Interval(float, 0, 1, closed="right"),
        "cutout": Interval(float, 0, 1, closed="left"),
        "augment_shift": OFF_OR_MORE,
        "augment_flip": Options((False, True)),
    },
    Recipe: {
        "architecture": Options(ChainMap(LADDER, ARCHITECTURES)),  # the registry itself (live), and the ladder
        "hidden_sizes": Sizes(),
        "activation": Options(tuple(ACTIVATIONS)),
        "code_activation": Options(("", *ACTIVATIONS)),
        "init": Options(INITS),
        "tied": Options((False, True)),
        "dropout": Interval(float, 0, 1, closed="left"),
        "batch_norm": Options((False, True)),
        "loss": Options(LOSSES),
        "noise": Options(NOISES),
        "noise_level": NONNEGATIVE,
        "noise_shift": OFF_OR_MORE,
        "augment_shift": OFF_OR_MORE,
        "sparsity": Options(SPARSITIES),
        "sparsity_weight": NONNEGATIVE,
        "sparsity_target": Interval(float, 0, 1, closed="neither"),
        "layerwise_epochs": Interval(int, 0, MAX_EPOCHS),
        "denoising_costs": Weights(empty=True),
        "precision": Options(PRECISIONS),
        "batch_size": Interval(int, 1, None),
        "steps_per_epoch": OFF_OR_MORE,
        "display_step": OFF_OR_MORE,
        "examples_to_show": Interval(int, 1, None),
    },
}


def check(recipe):
    """Every field of a :class:`Recipe` (its phases' too) against its constraint, then
    the cross-field rules; the first problem is a ConfigError naming the key as ``--set`` takes it
    (``finetune.learning_rate=...``). Returns ``recipe``."""
    for prefix, obj in (("", recipe), ("train.", recipe.train), ("finetune.", recipe.finetune)):
        if obj is None:
            continue
        for name, allowed in CONSTRAINTS[type(obj)].items():
            problem = describe_violation(getattr(obj, name), allowed)
            if problem:
                raise ConfigError(f"{prefix}{name}={getattr(obj, name)!r} {problem}")
    errors = cross_field_errors(recipe)
    if errors:
        raise ConfigError(errors[0])
    return recipe


def cross_field_errors(r) -> list[str]:
    """The rules that tie fields together, all in one place; each broken one as a message."""
    if r.architecture in LADDER:
        return _ladder_errors(r)
    errors = []
    for name, phase in (("train", r.train), ("finetune", r.finetune)):
        if phase is not None and phase.validate_every > 1 and not phase.validate_every <= phase.early_stopping:
            errors.append(f"{name}.validate_every={phase.validate_every} spaces early stopping's validation; it needs "
                          f"{name}.early_stopping (the patience, in epochs) at least as large, got "
                          f"{phase.early_stopping}: raise {name}.early_stopping or set {name}.validate_every=0")
    if r.denoising_costs or r.steps_per_epoch:
        errors.append(f"denoising_costs and steps_per_epoch are the ladder network's; architecture={r.architecture!r} "
                      "takes neither: leave them unset")
    if r.layerwise_epochs and (r.architecture != "mlp" or r.tied):
        errors.append(f"layerwise_epochs={r.layerwise_epochs} needs architecture='mlp' with tied=false "
                      f"(got architecture={r.architecture!r}, tied={r.tied}); or set layerwise_epochs=0")
    if r.noise == "mask" and not r.noise_level < 1:
        errors.append(f"noise_level={r.noise_level} must be below 1 for masking noise: the share of inputs masked")
    if r.noise == "none" and r.noise_level:
        errors.append(f"noise_level={r.noise_level} has no effect with noise='none'; set noise=mask or gaussian")
    if r.sparsity != "none" and not r.sparsity_weight:
        errors.append(f"sparsity={r.sparsity!r} needs a sparsity_weight above 0")
    if ARCHITECTURES.get(r.architecture) is not None and ARCHITECTURES[r.architecture].objective is not None:
        for name in ("noise_shift", "augment_shift", "sparsity_weight", "noise_level"):
            if getattr(r, name):
                errors.append(f"{name}={getattr(r, name)} is for the reconstruction objective; "
                              f"architecture={r.architecture!r} trains with its own loss: set {name}=0")
    if r.tied and r.architecture != "mlp":
        errors.append(f"tied=true needs architecture='mlp' (got {r.architecture!r})")
    ft = r.finetune
    if ft is not None:
        if ft.mode == "frozen" and (ft.reconstruction_weight or ft.pseudo_label_weight):
            errors.append("finetune.mode='frozen' trains the head alone; it takes no reconstruction_weight or "
                          "pseudo_label_weight")
        if ft.reconstruction_weight and ARCHITECTURES.get(r.architecture) is not None and \
                ARCHITECTURES[r.architecture].objective is not None:
            errors.append(f"finetune.reconstruction_weight needs the reconstruction objective; "
                          f"architecture={r.architecture!r} has its own loss")
        if ft.cutout and not ft.pseudo_label_weight:
            errors.append(f"finetune.cutout={ft.cutout} changes the view pseudo-labels are learned from; "
                          "set finetune.pseudo_label_weight above 0, or finetune.cutout=0")
    return errors


def _ladder_errors(r) -> list[str]:
    errors = []
    if len(r.denoising_costs) != len(r.hidden_sizes) + 2:
        errors.append(f"denoising_costs has {len(r.denoising_costs)} weights; a ladder with {len(r.hidden_sizes)} "
                      f"hidden layers needs {len(r.hidden_sizes) + 2}: the input, each hidden layer and the top")
    if r.finetune is None:
        errors.append("architecture='ladder' is a classifier: its recipe is a pretrain program's (with finetune)")
    if not r.steps_per_epoch:
        errors.append("architecture='ladder' draws its batches with replacement: set steps_per_epoch (batches per epoch)")
    if r.activation != "relu" or r.noise not in ("gaussian", "none"):
        errors.append(f"architecture='ladder' takes activation='relu' and noise='gaussian' or 'none' "
                      f"(got activation={r.activation!r}, noise={r.noise!r})")
    if r.noise == "none" and r.noise_level:
        errors.append(f"noise_level={r.noise_level} has no effect with noise='none'; set noise=gaussian")
    default, finetune = Recipe(), Finetune()
    unused = [name for name in LADDER_UNUSED if getattr(r, name) != getattr(default, name)]
    unused += [f"train.{n}" for n in ("early_stopping", "validate_every") if getattr(r.train, n)]
    if r.finetune is not None:
        unused += [f"finetune.{n}" for n in LADDER_UNUSED_FINETUNE if getattr(r.finetune, n) != getattr(finetune, n)]
    if unused:
        errors.append(f"{', '.join(unused)} mean{'s' if len(unused) == 1 else ''} nothing to the ladder network "
                      "(it keeps the weights with the best validation accuracy): leave them unset")
    return errors


def fields_of(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def keys(recipe: Recipe) -> list[str]:
    """Every key ``--set`` takes for ``recipe``: bare recipe fields, ``train.X`` and (pretrain) ``finetune.X``."""
    out = [f for f in fields_of(Recipe) if f not in ("train", "finetune")]
    out += [f"train.{f}" for f in fields_of(Phase)]
    if recipe.finetune is not None:
        out += [f"finetune.{f}" for f in fields_of(Finetune)]
    return out
