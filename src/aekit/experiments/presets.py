"""Named recipes (presets) as data: the tutorial's two programs, and the modern recipes for the same programs.

``tutorial`` holds the tutorial's exact hyperparameters (``seed`` is its old name); ``modern`` the best recipes
found, chosen on validation data (docs/recipes.md has the screening tables, docs/notes/ the history). A preset
may depend on the code size and on the number of training images (:data:`BY_SIZE`). Every field can be changed
with ``--set`` (:mod:`aekit.experiments.overrides`).
"""

from __future__ import annotations

import dataclasses

from aekit.data.images import shift_fits
from aekit.errors import ConfigError
from aekit.experiments.recipe import Finetune, Phase, Recipe

PROGRAMS = ("stacked", "pretrain")
PRESET_ALIASES = {"seed": "tutorial"}  # old name -> name (deprecated: "seed" also names the RNG seed)


def modern_phase(**kw) -> Phase:
    """What every modern phase shares: one-cycle AdamW with a little weight decay."""
    return Phase(**{"optimizer": "adamw", "weight_decay": 1e-4, "schedule": "onecycle", **kw})


MODERN_AE = dict(activation="gelu", code_activation="identity", init="kaiming", batch_size=128)
# modern-stacked at every code size: a PCA-residual autoencoder (it starts as PCA and learns what PCA misses),
# batches of 256 under bf16 autocast where the hardware multiplies bf16 (precision="auto"; fp32 elsewhere), and
# early stopping that keeps the best epoch where the residual branches overfit.
FAST_RESIDUAL = dict(architecture="pca-residual", batch_size=256, precision="auto")
PRESETS: dict[str, Recipe] = {
    "tutorial-stacked": Recipe(),  # 784-256-128-256-784, sigmoid, N(0, 1), TF1 RMSProp 0.02, 50 epochs
    "tutorial-pretrain": Recipe(hidden_sizes=(128, 64), train=Phase(epochs=100), finetune=Finetune()),
    "modern-stacked": Recipe(**{**MODERN_AE, **FAST_RESIDUAL}, hidden_sizes=(1024, 512, 128),
                             train=modern_phase(epochs=25, learning_rate=1.5e-3, early_stopping=5)),
    # A wide denoising MLP autoencoder, then the whole network fine-tuned with dropout and early stopping; where
    # some images have no label, they join fine-tuning as confident pseudo-labels under the denoising noise.
    "modern-pretrain": Recipe(**MODERN_AE, hidden_sizes=(1024, 512, 64), noise="mask", noise_level=0.25,
                              dropout=0.2, train=modern_phase(epochs=20, learning_rate=2e-3),
                              finetune=Finetune(epochs=30, optimizer="adamw", learning_rate=1e-3, weight_decay=1e-4,
                                                schedule="onecycle", early_stopping=8, head_init="xavier",
                                                pseudo_label_weight=1.0)),
    # A convolutional autoencoder (three stride-2 convolutions), then its encoder fine-tuned on views of the
    # labeled images shifted by up to a pixel; for clothes or photos add finetune.augment_flip=true (mirrored
    # digits or letters are other symbols, so the preset leaves it off). Where some images have no label, they
    # join fine-tuning as confident pseudo-labels learned from a view with three quarters of its side cut out.
    "conv-pretrain": Recipe(architecture="conv", hidden_sizes=(64, 128, 256, 256), activation="gelu", init="kaiming",
                            batch_size=128, precision="auto", train=modern_phase(epochs=5, learning_rate=2e-3),
                            finetune=Finetune(epochs=25, optimizer="adamw", learning_rate=2e-3, weight_decay=1e-4,
                                              schedule="onecycle", head_init="xavier", augment_shift=1,
                                              pseudo_label_weight=1.0, cutout=0.75)),
    # A ladder network (Rasmus et al. 2015; aekit fewlabels --method ladder): the paper's MNIST encoder, Gaussian noise
    # on the input and every normalised pre-activation, Adam held for a third of the steps then decayed to 0; epochs
    # of 250 batches drawn with replacement: 1,500 steps of pretraining, 3,000 semi-supervised, 1,000 labels-only.
    "ladder-pretrain": Recipe(architecture="ladder", hidden_sizes=(1000, 500, 250, 250, 250), activation="relu",
                              noise="gaussian", noise_level=0.3, denoising_costs=(1000.0, 10.0, 0.1, 0.1, 0.1, 0.1, 0.1),
                              batch_size=100, steps_per_epoch=250,
                              train=Phase(epochs=6, optimizer="adam", learning_rate=2e-3, schedule="hold-linear"),
                              finetune=Finetune(epochs=12, supervised_epochs=4, optimizer="adam", learning_rate=2e-3,
                                                schedule="hold-linear")),
}
# The plain MLP member of the family (the base of the quality benchmark's variants).
MODERN_MLP = Recipe(**MODERN_AE, hidden_sizes=(1024, 512, 128), train=modern_phase(epochs=30, learning_rate=2e-3))

SMALL_DATA = 10_000  # training images up to which modern-stacked uses its small-data recipes
SMALL_CODE = 64  # code sizes up to which it uses its small-code recipes
# On small data the residual branches overfit within a few epochs; translating each training image (and its
# target) by up to a pixel (augment_shift=1) makes up for it, with a strong weight decay at a small code.
SMALL_DATA_RESIDUAL = dict(FAST_RESIDUAL, augment_shift=1)
# Rows of (largest code size, largest number of training images, recipe): the first row that fits wins; None
# is no limit.
BY_SIZE: dict[str, tuple[tuple[int | None, int | None, Recipe], ...]] = {
    "modern-stacked": (
        (SMALL_CODE, SMALL_DATA, Recipe(**{**MODERN_AE, **SMALL_DATA_RESIDUAL}, hidden_sizes=(1024, 512, 32),
                                        train=modern_phase(epochs=40, learning_rate=5e-3, weight_decay=1.0,
                                                           early_stopping=10))),
        # A small code is a harder bottleneck: translation augmentation over more epochs, in batches of 512.
        (SMALL_CODE, None, Recipe(**{**MODERN_AE, **FAST_RESIDUAL, "batch_size": 512}, augment_shift=1,
                                  hidden_sizes=(1024, 512, 32),
                                  train=modern_phase(epochs=40, learning_rate=4e-3, early_stopping=5))),
        # At a larger code a lower peak learning rate, over more epochs.
        (None, SMALL_DATA, Recipe(**{**MODERN_AE, **SMALL_DATA_RESIDUAL}, hidden_sizes=(1024, 512, 128),
                                  train=modern_phase(epochs=80, learning_rate=1e-3, early_stopping=10))),
        (None, None, PRESETS["modern-stacked"]),
    ),
}


def get_preset(program: str, preset: str = "tutorial", code_size: int | None = None, n_train: int | None = None,
               image_shape: tuple[int, ...] | None = None) -> Recipe:
    """The named preset's recipe. A preset with a table in :data:`BY_SIZE` gives its first row that fits
    ``code_size`` and ``n_train``; a size not given is taken as large. Translation augmentation needs 2-D
    images: where ``image_shape`` says the data has none, the row's recipe runs without it."""
    key = f"{PRESET_ALIASES.get(preset, preset)}-{program}"
    if key not in PRESETS:
        names = sorted({k.split("-", 1)[0] for k in PRESETS if k.endswith(f"-{program}")})
        raise ConfigError(f"--preset {preset!r} has no {program!r} program; presets with one: {', '.join(names)}")
    table = BY_SIZE.get(key)
    if table is None:
        return PRESETS[key]
    recipe = next(r for most_code, most_train, r in table if _fits(code_size, most_code) and _fits(n_train, most_train))
    if image_shape is not None and recipe.augment_shift and not shift_fits(image_shape, recipe.augment_shift):
        recipe = dataclasses.replace(recipe, augment_shift=0)
    return recipe


def fit_to_data(recipe: Recipe, n_train: int, n_features: int | None, chosen: set[str]) -> tuple[Recipe, list[str]]:
    """A preset's recipe fitted to data of ``n_train`` training examples, where the user chose neither setting
    (``chosen``: the keys set): a batch of at most the training examples and, for a table of ``n_features``
    columns (one-hot features counted; None for images), a code of at most half the features (a code as wide as
    the table can copy it, anomalies included). Returns the recipe and a note for each change."""
    notes, code, batch = [], recipe.hidden_sizes[-1], recipe.batch_size
    if n_features is not None and "hidden_sizes" not in chosen and code > max(2, n_features // 2):
        code = max(2, n_features // 2)
        notes.append(f"code size {recipe.hidden_sizes[-1]} -> {code}: at most half the table's {n_features} features")
    if "batch_size" not in chosen and batch > n_train:
        batch = n_train
        notes.append(f"batch_size {recipe.batch_size} -> {batch}: the {n_train} training "
                     f"{'images' if n_features is None else 'rows'}")
    hidden = tuple(max(h, code) for h in recipe.hidden_sizes[:-1]) + (code,)
    return dataclasses.replace(recipe, hidden_sizes=hidden, batch_size=batch), notes


def _fits(size: int | None, most: int | None) -> bool:
    """Whether ``size`` (None: unknown, taken as large) is within the limit ``most`` (None: no limit)."""
    return most is None or (size is not None and size <= most)
