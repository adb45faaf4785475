"""scikit-learn estimators: an autoencoder as a transformer, and a (semi-supervised) classifier.

They follow scikit-learn's contract: ``__init__`` only stores its arguments, validation happens
in ``fit``, learned state ends in ``_``, and both pass ``parametrize_with_checks``.

Inputs may be uint8 images (scaled by 1/255) or floats already in [0, 1] (used as they are), which the
network reconstructs through a sigmoid; or any other numbers, a table's columns, standardized per feature
with the training data's mean and standard deviation and reconstructed through a linear output. Errors
are measured in that scaled space.
"""

from __future__ import annotations

import copy
import dataclasses
import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from aekit.constraints import InstanceOf, Interval, Options, Sizes, check_params
from aekit.data.arrays import Dataset, Split
from aekit.data.batches import make_batches
from aekit.errors import ConfigError, DataError
from aekit.experiments.builders import build_autoencoder, train_autoencoder
from aekit.experiments.programs import fine_tune
from aekit.experiments.recipe import Finetune, Phase, Recipe, check
from aekit.models.layers import ACTIVATIONS
from aekit.models.stacked import StackedAutoencoder
from aekit.runtime import generator, seeded_global_rng, select_device, setup
from aekit.training.evaluate import per_chunk
from aekit.training.neighbors import NORM_POWER, knn_distance, saved_norm_power

DTYPES = [np.float64, np.float32, np.uint8]
SCORINGS = ("reconstruction", "knn")


class _AutoencoderBase(BaseEstimator):
    """Shared: input scaling, the network, the training run, saving."""

    _parameter_constraints: dict = {
        "hidden_sizes": Sizes(),
        "activation": Options(tuple(ACTIVATIONS)),
        "batch_size": Interval(int, 1),
        "learning_rate": Interval(float, 0, None, closed="neither"),
        "weight_decay": Interval(float, 0),
        "random_state": [InstanceOf((type(None), np.random.RandomState), "None, a numpy RandomState"),
                         Interval(int, 0, 2**32 - 1)],
        "device": InstanceOf((str,), "a str like 'auto', 'cpu' or 'cuda:0'"),
        "verbose": InstanceOf((bool, numbers.Integral), "a bool"),
    }

    def _check_params(self):
        """Every parameter against its constraint, before any work; then the layer sizes as a tuple."""
        check_params(type(self).__name__, self.get_params(), self._parameter_constraints)
        return tuple(int(h) for h in self.hidden_sizes)

    def _fit_scaling(self, X: np.ndarray) -> None:
        if X.dtype == np.uint8:
            self.scaling_ = "uint8"
            self.data_min_, self.data_range_ = np.zeros(X.shape[1], np.float32), np.full(X.shape[1], 255.0, np.float32)
        elif X.min() >= 0 and X.max() <= 1:
            self.scaling_ = "identity"
            self.data_min_, self.data_range_ = np.zeros(X.shape[1], np.float32), np.ones(X.shape[1], np.float32)
        else:  # a table: standardized, as scikit-learn's StandardScaler (a constant column is centred only)
            self.scaling_ = "standard"
            std = X.std(axis=0, dtype=np.float64)
            self.data_min_ = X.mean(axis=0, dtype=np.float64).astype(np.float32)
            self.data_range_ = np.where(std > 0, std, 1.0).astype(np.float32)

    def _scale(self, X: np.ndarray) -> np.ndarray:
        """(N, D) in the network's space: uint8 stays uint8 (scaled per batch on the device), float64 stays
        float64 (so that float64 inputs are computed in float64, as scikit-learn does). Pixel-like data is
        clipped to [0, 1]; standardized columns are not bounded."""
        if self.scaling_ == "uint8" and X.dtype == np.uint8:
            return X
        dtype = np.float64 if X.dtype == np.float64 else np.float32
        scaled = (X.astype(dtype) - self.data_min_) / self.data_range_
        return scaled if self.scaling_ == "standard" else np.clip(scaled, 0.0, 1.0)

    def _unscale(self, Z: np.ndarray) -> np.ndarray:
        return Z * self.data_range_.astype(Z.dtype) + self.data_min_.astype(Z.dtype)

    def _validate(self, X, reset: bool) -> np.ndarray:
        return validate_data(self, X, reset=reset, dtype=DTYPES, ensure_min_samples=1)

    def _seed(self) -> int:
        return int(check_random_state(self.random_state).randint(0, 2**31 - 1))

    def _device(self) -> torch.device:
        """The device to train on, after :func:`aekit.runtime.setup` (flush-to-zero: saturated sigmoids give
        denormal gradients, which x86 CPUs compute in microcode) with the caller's thread count kept."""
        device = select_device(self.device)
        setup(device, threads=torch.get_num_threads())
        return device

    def _recipe(self, hs: tuple, epochs: int, n_rows: int) -> Recipe:
        """The recipe this estimator trains with: a plain MLP autoencoder (kaiming init for relu and gelu, else
        xavier) with a sigmoid output for pixels (a linear one for standardized columns), AdamW at a constant
        ``learning_rate``, with ``weight_decay``."""
        act = self.activation
        return check(Recipe(hidden_sizes=hs, activation=act, init="kaiming" if act in ("relu", "gelu") else "xavier",
                            batch_size=min(self.batch_size, n_rows),
                            train=Phase(epochs=max(1, epochs), optimizer="adamw", learning_rate=self.learning_rate,
                                        weight_decay=self.weight_decay)))

    def _train_autoencoder(self, Xs: np.ndarray, hs: tuple, epochs: int, seed: int, device) -> tuple:
        """The programs' autoencoder training, with :meth:`_recipe`; 0 epochs gives the untrained network."""
        recipe = self._recipe(hs, epochs, len(Xs))
        Xs = Xs if Xs.dtype == np.uint8 else Xs.astype(np.float32, copy=False)
        data = _as_dataset(Xs, bounded=self.scaling_ != "standard")
        model = build_autoencoder(recipe, data, generator(seed), device)
        curve = []
        if epochs > 0:
            batches = make_batches(Xs, batch_size=recipe.batch_size, device=device, seed=seed)
            curve = train_autoencoder(model, recipe, data, batches, progress=bool(self.verbose),
                                      log=print if self.verbose else (lambda s: None)).epoch_loss
        return model.eval(), curve

    @staticmethod
    def _for_dtype(model: torch.nn.Module, Xs: np.ndarray) -> torch.nn.Module:
        """A float64 copy of ``model`` for float64 input on the CPU: results then do not depend on the
        batch split (float32 BLAS rounding does); otherwise the float32 model itself."""
        device = next(model.parameters()).device
        if Xs.dtype == np.float64 and device.type == "cpu":
            return copy.deepcopy(model).double()
        return model

    @torch.inference_mode()
    def _predict_chunks(self, method: str, Xs: np.ndarray) -> np.ndarray:
        model = self._for_dtype(self.model_, Xs)
        fn = getattr(model, method)
        device = next(model.parameters()).device
        dtype = next(model.parameters()).dtype
        return per_chunk(lambda x: fn(x.to(dtype)), Xs, device)

    def _errors(self, X) -> np.ndarray:
        check_is_fitted(self)
        Xs = self._scale(self._validate(X, reset=False))
        ae = self._for_dtype(self.autoencoder_, Xs)
        device, dtype = next(ae.parameters()).device, next(ae.parameters()).dtype

        def error(x):
            x = x.to(dtype)
            return ((ae(x) - x) ** 2).mean(dim=1)
        return per_chunk(error, Xs, device).astype(np.float64)

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("model_", "_autoencoder"):
            if key in state:  # pickles load on machines without the training GPU
                state[key] = state[key].cpu()
        return state

    def save(self, directory) -> None:
        """Write the fitted estimator as a checkpoint folder; :func:`aekit.load` returns it."""
        from aekit.checkpoint import save

        check_is_fitted(self)
        arrays = {"data_min": self.data_min_, "data_range": self.data_range_, "neighbors": getattr(self, "neighbors_", None)}
        extra = {"params": _jsonable(self.get_params()), "scaling": self.scaling_, "n_features_in": int(self.n_features_in_)}
        if hasattr(self, "knn_norm_power_"):
            extra["knn_norm_power"] = self.knn_norm_power_
        if hasattr(self, "classes_"):
            arrays["classes"] = self.classes_ if self.classes_.dtype.kind in "iuf" else None
            extra["classes"] = [_jsonable(c) for c in self.classes_.tolist()]
        if isinstance(self, AutoencoderClassifier):  # keep the pretrained decoder too
            arrays.update({f"decoder.{k}": v.detach().cpu().numpy() for k, v in self._autoencoder.decoder.state_dict().items()})
        arrays = {k: v for k, v in arrays.items() if v is not None}
        save(self.model_, directory, kind=type(self).__name__, config=dataclasses.asdict(self.model_.config), extra=extra, arrays=arrays)


class AutoencoderTransformer(TransformerMixin, _AutoencoderBase):
    """An MLP autoencoder: ``transform`` gives codes, ``inverse_transform`` decodes, ``score_samples`` says how
    normal each sample is (higher is more normal): minus its reconstruction error, or minus its mean distance to
    its nearest training samples (``scoring="knn"``, see :mod:`aekit.training.neighbors`).

    Parameters
    ----------
    hidden_sizes : tuple of int, default=(256, 64)
        Encoder widths; the last is the code size. The decoder mirrors the encoder.
    activation : str, default="gelu"
        Hidden activation: relu, gelu, selu, sigmoid, tanh.
    max_epochs : int, default=50
        Passes over the training data.
    batch_size : int, default=128
    learning_rate : float, default=1e-3
        AdamW learning rate.
    weight_decay : float, default=1e-4
    random_state : int, RandomState or None, default=None
    device : str, default="auto"
        cuda when present, else cpu.
    verbose : bool, default=False
    scoring : {"knn", "reconstruction"}, default="knn"
        What ``score_samples`` measures. "knn" keeps the training samples (``neighbors_``: as much memory as the
        training data) and scores by the mean distance to the ``n_neighbors`` nearest of them; it separated
        anomalies better than the reconstruction error on the validation splits of docs/anomaly.md's image
        benchmarks and on scikit-learn's tables. Checkpoints saved before this option score by reconstruction.
    n_neighbors : int, default=5
        Neighbours averaged by ``scoring="knn"``.
    """

    _parameter_constraints: dict = {**_AutoencoderBase._parameter_constraints, "max_epochs": Interval(int, 1),
                                    "scoring": Options(SCORINGS), "n_neighbors": Interval(int, 1)}

    def __init__(self, hidden_sizes=(256, 64), activation="gelu", max_epochs=50, batch_size=128,
                 learning_rate=1e-3, weight_decay=1e-4, random_state=None, device="auto", verbose=False,
                 scoring="knn", n_neighbors=5):
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.scoring = scoring
        self.n_neighbors = n_neighbors

    def fit(self, X, y=None):
        hs = self._check_params()
        X = self._validate(X, reset=True)
        self._fit_scaling(X)
        Xs = self._scale(X)
        try:
            model, curve = self._train_autoencoder(Xs, hs, self.max_epochs, self._seed(), self._device())
        except ConfigError as e:
            raise ValueError(str(e)) from None
        if self.scoring == "knn":  # uint8 pixels kept as they are: a quarter of the memory of floats
            self.neighbors_ = Xs if Xs.dtype == np.uint8 else Xs.astype(np.float32)
            self.knn_norm_power_ = NORM_POWER
        self.model_ = model
        self.loss_curve_ = curve
        self.n_components_ = hs[-1]
        return self

    @property
    def autoencoder_(self) -> StackedAutoencoder:
        return self.model_

    def transform(self, X) -> np.ndarray:
        """Codes, (n_samples, n_components_)."""
        check_is_fitted(self)
        Xs = self._scale(self._validate(X, reset=False))
        return self._predict_chunks("encode", Xs)

    def inverse_transform(self, Z) -> np.ndarray:
        """Decode codes back to the input space (original units)."""
        check_is_fitted(self)
        Z = np.asarray(Z)
        Z = Z.astype(np.float64 if Z.dtype == np.float64 else np.float32)
        if Z.ndim != 2 or Z.shape[1] != self.n_components_:
            raise ValueError(f"codes must have shape (n_samples, {self.n_components_}), got {Z.shape}")
        return self._unscale(self._predict_chunks("decode", Z))

    def reconstruction_error(self, X) -> np.ndarray:
        """Per-sample mean squared error in the scaled space (see the module docstring), (n_samples,)."""
        return self._errors(X)

    def score_samples(self, X) -> np.ndarray:
        """Higher means more normal, as in scikit-learn's outlier detectors: minus the reconstruction error, or
        with ``scoring="knn"`` minus the mean distance to the nearest training samples."""
        if self.scoring != "knn":
            return -self._errors(X)
        check_is_fitted(self)
        Xs = self._scale(self._validate(X, reset=False))
        device = next(self.model_.parameters()).device
        return -knn_distance(self.neighbors_, Xs, self.n_neighbors, self.scaling_ != "standard", device,
                             norm_power=getattr(self, "knn_norm_power_", 0.0))  # 0: pickled before it existed

    def score(self, X, y=None) -> float:
        """Minus the mean squared reconstruction error."""
        return float(-self._errors(X).mean())


class AutoencoderClassifier(ClassifierMixin, _AutoencoderBase):
    """Pretrain an autoencoder on every row, then fine-tune its encoder plus a softmax head on the
    labeled rows. Rows with ``y == -1`` are unlabeled, as in scikit-learn's semi-supervised estimators.

    Parameters
    ----------
    hidden_sizes, activation, batch_size, learning_rate, weight_decay, random_state, device, verbose
        As :class:`AutoencoderTransformer`.
    pretrain_epochs : int, default=30
        Autoencoder epochs over all rows (0 trains from scratch).
    finetune_epochs : int, default=30
        Classifier epochs over the labeled rows.
    freeze_encoder : bool, default=False
        Train only the head (a linear probe on the codes).
    pseudo_label_weight : float, default=0.0
        With unlabeled rows, also fine-tune on them: each step learns the classifier's confident
        predictions on clean unlabeled rows from masked copies of them (see
        ``aekit.training.objectives.SemiSupervisedObjective``). An epoch is then one pass over the unlabeled
        rows, each step with a labeled batch beside it. The pseudo-labels are aligned to the labeled
        rows' class frequencies, so label rows in proportion to the classes (or evenly for balanced
        data). 0 fine-tunes on the labeled rows alone.
    pseudo_label_threshold : float, default=0.95
        The predicted probability an unlabeled row needs before its prediction is learned.
    """

    _parameter_constraints: dict = {
        **_AutoencoderBase._parameter_constraints,
        "pretrain_epochs": Interval(int, 0),
        "finetune_epochs": Interval(int, 1),
        "freeze_encoder": InstanceOf((bool, np.bool_), "a bool"),
        "pseudo_label_weight": Interval(float, 0),
        "pseudo_label_threshold": Interval(float, 0, 1, closed="right"),
    }

    def __init__(self, hidden_sizes=(256, 64), activation="gelu", pretrain_epochs=30, finetune_epochs=30,
                 batch_size=128, learning_rate=1e-3, weight_decay=1e-4, freeze_encoder=False,
                 pseudo_label_weight=0.0, pseudo_label_threshold=0.95, random_state=None, device="auto", verbose=False):
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.pretrain_epochs = pretrain_epochs
        self.finetune_epochs = finetune_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.freeze_encoder = freeze_encoder
        self.pseudo_label_weight = pseudo_label_weight
        self.pseudo_label_threshold = pseudo_label_threshold
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def fit(self, X, y):
        hs = self._check_params()
        X, y = validate_data(self, X, y, dtype=DTYPES, ensure_min_samples=1)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        labeled = ~(y == -1) if y.dtype.kind in "iuf" else np.ones(len(y), bool)
        self.classes_ = np.unique(y[labeled])
        if len(self.classes_) < 2:
            raise ValueError(f"AutoencoderClassifier needs at least 2 classes among labeled rows; got {len(self.classes_)} class")
        self._fit_scaling(X)
        Xs, seed, device = self._scale(X), self._seed(), self._device()
        ae, self.pretrain_loss_curve_ = self._train_autoencoder(Xs, hs, self.pretrain_epochs, seed, device)
        y_idx = LabelEncoder().fit(self.classes_).transform(y[labeled])
        Xl = Xs[labeled] if Xs.dtype == np.uint8 else Xs[labeled].astype(np.float32)
        batches = make_batches(Xl, y_idx, batch_size=min(self.batch_size, len(Xl)), device=device, seed=seed + 1)
        unlabeled = None
        if not labeled.all():
            Xu = Xs[~labeled] if Xs.dtype == np.uint8 else Xs[~labeled].astype(np.float32)
            unlabeled = make_batches(Xu, batch_size=min(self.batch_size, len(Xu)), device=device, seed=seed + 2)
        # The programs' fine-tuning, with this estimator's recipe: AdamW, a zero-initialised head, and for
        # pseudo-labels the masking noise of the modern recipe. No validation split: every epoch runs.
        base = self._recipe(hs, 1, len(Xs))
        recipe = check(dataclasses.replace(base, noise="mask", noise_level=0.25, finetune=Finetune(
            epochs=self.finetune_epochs, optimizer="adamw", learning_rate=self.learning_rate,
            weight_decay=self.weight_decay, mode="frozen" if self.freeze_encoder else "full", head_init="zeros",
            pseudo_label_weight=self.pseudo_label_weight, pseudo_label_threshold=self.pseudo_label_threshold)))
        data = _as_dataset(Xl, y_idx, classes=tuple(str(c) for c in self.classes_), bounded=self.scaling_ != "standard")
        with seeded_global_rng(seed, device):  # the masking noise: the same random_state, the same model
            clf, hist = fine_tune(recipe, ae, data, batches, device, generator(seed), unlabeled=unlabeled,
                                  progress=bool(self.verbose), log=print if self.verbose else (lambda s: None))
        self.loss_curve_ = hist.epoch_loss
        self.model_ = clf.eval()
        self._autoencoder = ae
        return self

    @property
    def autoencoder_(self) -> StackedAutoencoder:
        """The pretrained autoencoder; its encoder is the (fine-tuned) classifier's encoder."""
        return self._autoencoder

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        Xs = self._scale(self._validate(X, reset=False))
        return self._predict_chunks("predict_proba", Xs).astype(np.float64)

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def encode(self, X) -> np.ndarray:
        """Codes of the (fine-tuned) encoder, (n_samples, hidden_sizes[-1])."""
        check_is_fitted(self)
        Xs = self._scale(self._validate(X, reset=False))
        return self._predict_chunks("encode", Xs)


def _as_dataset(X: np.ndarray, y: np.ndarray | None = None, classes: tuple[str, ...] = (), bounded: bool = True) -> Dataset:
    """``X`` (already scaled) as the training split of a Dataset, for the programs' training functions; the
    estimators keep no validation or test split (scikit-learn's model selection does that)."""
    empty = Split(X[:0], None if y is None else y[:0])
    return Dataset("fit", train=Split(X, y), validation=empty, test=empty, image_shape=(X.shape[1],), classes=classes,
                   bounded=bounded)


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, tuple):
        return list(v)
    return v


def from_checkpoint(meta: dict, tensors: dict[str, torch.Tensor], source: str = "checkpoint"):
    """Rebuild a fitted estimator saved by ``save()``; anything missing or wrong is a DataError naming ``source``."""
    from aekit.checkpoint import DAMAGED, as_numpy, load_weights
    from aekit.models.registry import rebuild

    def damaged(what: str) -> DataError:
        return DataError(f"{source}: {what}; {DAMAGED}")

    cls = {"AutoencoderTransformer": AutoencoderTransformer, "AutoencoderClassifier": AutoencoderClassifier}[meta["kind"]]
    extra = meta.get("extra", {})
    if not isinstance(extra.get("params"), dict):
        raise damaged("config.json lacks extra.params, the estimator's parameters")
    valid = sorted(cls().get_params())
    unknown = sorted(set(extra["params"]) - set(valid))
    if unknown:
        raise damaged(f"extra.params has unknown keys {unknown}; {cls.__name__} takes {valid}")
    params = {k: tuple(v) if k == "hidden_sizes" and isinstance(v, list) else v for k, v in extra["params"].items()}
    if cls is AutoencoderTransformer:  # saved before scoring existed: it scored by reconstruction, and still does
        params.setdefault("scoring", "reconstruction")
    est = cls(**params)
    try:
        est._check_params()
    except (ValueError, TypeError) as e:  # ConfigError included
        raise damaged(f"extra.params: {e}") from None
    if extra.get("scaling") not in ("uint8", "identity", "minmax", "standard"):  # minmax: checkpoints of aekit 0.1
        raise damaged(f"extra.scaling is {extra.get('scaling')!r}; expected 'uint8', 'identity', 'minmax' or 'standard'")
    n = extra.get("n_features_in")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise damaged(f"extra.n_features_in is {n!r}; expected a positive integer")
    scale = {}
    for name in ("data_min", "data_range"):
        if f"extra.{name}" not in tensors:
            raise damaged(f"model.safetensors lacks extra.{name}, the input scaling")
        arr = as_numpy(tensors[f"extra.{name}"]).astype(np.float32)
        if arr.shape != (n,) or not np.isfinite(arr).all() or (name == "data_range" and not (arr > 0).all()):
            raise damaged(f"extra.{name} must be {n} finite numbers{' above 0' if name == 'data_range' else ''}; "
                          f"found {arr.dtype} {arr.shape}")
        scale[name] = arr
    model_kind = "EncoderClassifier" if cls is AutoencoderClassifier else "StackedAutoencoder"
    inner = meta["config"].get("autoencoder_kind", "StackedAutoencoder")
    if cls is AutoencoderClassifier and inner != "StackedAutoencoder":
        raise damaged(f"config.autoencoder_kind is {inner!r}; an estimator holds a StackedAutoencoder")
    model = rebuild(model_kind, meta["config"], f"{source}/config.json")
    load_weights(model, {k: v for k, v in tensors.items() if not k.startswith("extra.")}, f"{source}/model.safetensors")
    config = model.config.autoencoder if cls is AutoencoderClassifier else model.config
    if config.input_size != n:
        raise damaged(f"the network takes {config.input_size} features but extra.n_features_in is {n}")
    est.model_ = model.eval()
    est.scaling_ = extra["scaling"]
    est.data_min_, est.data_range_ = scale["data_min"], scale["data_range"]
    est.n_features_in_ = n
    est.loss_curve_ = []
    if cls is AutoencoderClassifier:
        if "extra.classes" in tensors:
            est.classes_ = as_numpy(tensors["extra.classes"])
        elif isinstance(extra.get("classes"), list):
            est.classes_ = np.array(extra["classes"])
        else:
            raise damaged("the checkpoint holds neither extra.classes nor a list extra['classes'] of class labels")
        if est.classes_.shape != (model.head.out_features,):
            raise damaged(f"{model.head.out_features} class outputs but classes of shape {est.classes_.shape}")
        ae = rebuild("StackedAutoencoder", meta["config"]["autoencoder"], f"{source}/config.json")
        decoder = {k[len("extra.decoder."):]: v for k, v in tensors.items() if k.startswith("extra.decoder.")}
        load_weights(ae.decoder, decoder, f"{source}/model.safetensors (extra.decoder.*)")
        ae.encoder = model.encoder
        est._autoencoder = ae.eval()
    else:
        est.n_components_ = model.config.code_size
        if est.scoring == "knn":
            bank = tensors.get("extra.neighbors")
            if bank is None or bank.ndim != 2 or bank.shape[1] != n:
                raise damaged(f"scoring='knn' needs extra.neighbors, the training samples as (rows, {n}); found "
                              f"{'none' if bank is None else tuple(bank.shape)}")
            est.neighbors_ = as_numpy(bank)
            est.knn_norm_power_ = saved_norm_power(extra, "knn_norm_power", f"{source}/config.json")
    return est
