import dataclasses
import time

import pytest
import torch

from aekit.errors import ConfigError
from aekit.experiments.overrides import apply_overrides, parse_overrides, scale_epochs, with_code_size
from aekit.experiments.presets import get_preset
from aekit.experiments.recipe import CONSTRAINTS, Finetune, Phase, Recipe, check, cross_field_errors, keys

STACKED, PRETRAIN = get_preset("stacked"), get_preset("pretrain")


def test_tutorial_presets_are_the_tutorials_numbers():
    s, p = STACKED, PRETRAIN
    assert (s.train.learning_rate, s.train.epochs, s.batch_size, s.display_step, s.examples_to_show) == (0.02, 50, 256, 5, 10)
    assert s.hidden_sizes == (256, 128) and s.activation == "sigmoid" and s.init == "normal"
    assert s.train.optimizer == "rmsprop-tf1" and s.finetune is None
    assert (p.train.learning_rate, p.finetune.learning_rate, p.train.epochs, p.finetune.epochs) == (0.02, 0.5, 100, 200)
    assert p.hidden_sizes == (128, 64) and p.finetune.head_init == "zeros" and p.finetune.optimizer == "sgd"


def test_overrides_are_typed():
    cfg = apply_overrides(STACKED, parse_overrides(["batch_size=128", "learning_rate=0.01", "hidden_sizes=512,64"]))
    assert cfg.batch_size == 128 and cfg.train.learning_rate == 0.01 and cfg.hidden_sizes == (512, 64)


def test_unknown_key_names_the_nearest():
    with pytest.raises(ConfigError, match=r"--set batch_sise: unknown key; did you mean 'batch_size'\? valid keys: "):
        apply_overrides(STACKED, {"batch_sise": "3"})
    with pytest.raises(ConfigError, match=r"training_epochs: unknown key; did you mean 'train.epochs'\?"):
        apply_overrides(STACKED, {"training_epochs": "3"})  # the old name is gone, the new one suggested


@pytest.mark.parametrize("pair, match", [
    ("batch_size=0", r"batch_size=0 must be an int in the range \[1, inf\)"),
    ("epochs=-1", r"train.epochs=-1 must be an int in the range \[1, 100000\]"),
    ("learning_rate=0", r"train.learning_rate=0.0 must be a float in the range \(0, 1e\+30\]"),
    ("batch_size=abc", r"batch_size='abc': expected an integer"),
    ("hidden_sizes=a,b", r"expected a list of integers like \[256, 128\]"),
    ("hidden_sizes=0", r"hidden_sizes=\(0,\) must be a non-empty tuple of positive ints"),
    ("dropout=1", r"dropout=1.0 must be a float in the range \[0, 1\)"),
])
def test_bad_values(pair, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(STACKED, parse_overrides([pair]))


def test_malformed_pair():
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["batch_size"])


def test_scale_epochs():
    cfg = scale_epochs(PRETRAIN, 0.01)
    assert (cfg.train.epochs, cfg.finetune.epochs) == (1, 2)
    assert cfg.layerwise_epochs == 0  # off stays off
    assert scale_epochs(STACKED, 2).train.epochs == 100
    with pytest.raises(ConfigError, match="--epochs-scale 0.0 must be positive"):
        scale_epochs(STACKED, 0.0)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="--preset .fancy. has no .stacked. program; presets with one: modern, tutorial"):
        get_preset("stacked", "fancy")
    with pytest.raises(ConfigError, match="--preset .conv. has no .stacked. program; presets with one: modern, tutorial"):
        get_preset("stacked", "conv")


def test_conv_preset_pretrains_a_conv_autoencoder_and_fine_tunes_on_views():
    from conftest import tiny_arrays

    from aekit.data.arrays import from_arrays
    from aekit.experiments.overrides import apply_overrides
    from aekit.experiments.programs import run_pretrain
    from aekit.models.conv import ConvAutoencoder

    cfg = get_preset("pretrain", "conv")
    assert cfg.architecture == "conv" and cfg.finetune.augment_shift == 1 and not cfg.finetune.augment_flip
    cfg = apply_overrides(cfg, {"hidden_sizes": (8, 16, 16), "train.epochs": 1, "finetune.epochs": 3, "batch_size": 32,
                                "display_step": 0})
    xtr, ytr, xte, yte = tiny_arrays(n_train=200)
    result = run_pretrain(cfg, from_arrays("tiny", xtr, ytr, xte, yte), torch.device("cpu"), seed=0,
                          log=lambda s: None, progress=False)
    assert isinstance(result.autoencoder, ConvAutoencoder) and result.metrics["test_accuracy"] > 0.5  # 4 classes


def test_presets_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        STACKED.batch_size = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        STACKED.train.epochs = 3


def test_typed_values_from_toml():
    cfg = apply_overrides(STACKED, {"hidden_sizes": [64, 8], "learning_rate": 1, "train.epochs": 3})
    assert cfg.hidden_sizes == (64, 8) and cfg.train.learning_rate == 1.0 and cfg.train.epochs == 3
    for key, value, match in [("epochs", 2.5, "expected an integer"), ("learning_rate", "x", "expected a number"),
                              ("hidden_sizes", [1.5], "expected a list of integers"), ("batch_size", True, "expected an integer")]:
        with pytest.raises(ConfigError, match=match):
            apply_overrides(STACKED, {key: value})


def test_cli_tutorial_configs_are_the_presets():
    # --epochs-scale 1 and no overrides must give exactly the tutorial programs (no option switched on by accident)
    from aekit.runner import RunSpec, build_configs

    assert build_configs(RunSpec(program="all")) == {"stacked": Recipe(), "pretrain": PRETRAIN}


def test_code_size():
    assert with_code_size(get_preset("stacked", "modern"), 32).hidden_sizes[-1] == 32
    assert with_code_size(STACKED, None) == STACKED
    with pytest.raises(ConfigError, match="--code-size 0 must be a positive integer"):
        with_code_size(STACKED, 0)


def test_tutorial_preset_and_its_deprecated_alias(capsys):
    from aekit.runner import RunSpec, build_configs

    assert get_preset("stacked", "tutorial") == get_preset("stacked", "seed") == Recipe()
    assert RunSpec().preset == "tutorial"
    configs = build_configs(RunSpec(program="all", preset="seed"))
    assert configs["pretrain"] == PRETRAIN
    assert "preset 'seed' is now called 'tutorial'" in capsys.readouterr().err


def test_one_name_per_setting():
    """A bare phase key is the autoencoder's training in both programs; finetune.KEY the fine-tuning's."""
    from aekit.runner import RunSpec, build_configs

    c = build_configs(RunSpec(program="all", config={"learning_rate": "0.01", "finetune.learning_rate": "0.2",
                                                     "batch_size": "64", "train.optimizer": "adam"}))
    assert c["stacked"].train.learning_rate == c["pretrain"].train.learning_rate == 0.01
    assert c["pretrain"].finetune.learning_rate == 0.2 and c["pretrain"].finetune.optimizer == "sgd"
    assert c["stacked"].batch_size == c["pretrain"].batch_size == 64
    assert c["stacked"].train.optimizer == c["pretrain"].train.optimizer == "adam"
    c = build_configs(RunSpec(program="pretrain", config={"epochs": "3", "finetune.epochs": "4"}))
    assert (c["pretrain"].train.epochs, c["pretrain"].finetune.epochs) == (3, 4)


def test_toml_tables_are_dotted_keys(tmp_path):
    from aekit.runner import build_configs, read_toml

    (tmp_path / "r.toml").write_text('program = "pretrain"\n[config]\nepochs = 3\n[config.finetune]\nepochs = 4\nmode = "frozen"\n')
    c = build_configs(read_toml(tmp_path / "r.toml"))["pretrain"]
    assert (c.train.epochs, c.finetune.epochs, c.finetune.mode) == (3, 4, "frozen")


@pytest.mark.parametrize("program, config, match", [
    ("all", {"finetune.batch_sise": "3"}, "unknown key"),
    ("all", {"stacked.epochs": "3"}, "unknown key"),
    ("all", {"epochs": "3", "train.epochs": "2"}, "epochs and train.epochs set the same field"),
    ("all", {"finetune.head_init": "zeroes"}, "finetune.head_init='zeroes' must be one of: 'zeros'"),
    ("all", {"finetune.optimizer": "adamm"}, "finetune.optimizer='adamm' must be one of"),
    ("stacked", {"finetune.epochs": "3"}, "the stacked program has no fine-tuning phase"),
])
def test_bad_keys_fail_before_any_work(program, config, match):
    from aekit.runner import RunSpec, build_configs

    with pytest.raises(ConfigError, match=match):
        build_configs(RunSpec(program=program, config=config))


@pytest.mark.parametrize("key, value", [("activation", "swish"), ("code_activation", "swish"), ("architecture", "gan"),
                                        ("schedule", "linear"), ("precision", "fp8"), ("noise", "salt")])
def test_every_text_field_has_its_choices(key, value):
    with pytest.raises(ConfigError, match=f"{key}='{value}' must be one of: "):
        apply_overrides(STACKED, {key: value})


def test_every_field_has_one_constraint():
    for cls in (Recipe, Phase, Finetune):
        names = {f.name for f in dataclasses.fields(cls)} - {"train", "finetune"}
        assert set(CONSTRAINTS[cls]) == names, cls
    for preset in (STACKED, PRETRAIN, get_preset("stacked", "modern"), get_preset("pretrain", "modern")):
        assert check(preset) is preset and not cross_field_errors(preset)
    assert "finetune.mode" in keys(PRETRAIN) and "finetune.mode" not in keys(STACKED)


@pytest.mark.parametrize("config, match", [
    ({"layerwise_epochs": "5", "noise": "mask", "noise_level": "1.5"}, "noise_level=1.5 must be below 1"),
    ({"layerwise_epochs": "5", "tied": "true"}, "layerwise_epochs=5 needs architecture='mlp' with tied=false"),
    ({"architecture": "vae", "noise": "gaussian", "noise_level": "0.1"}, "noise_level=0.1 is for the reconstruction"),
    ({"noise_level": "0.3"}, "has no effect with noise='none'"),
    ({"tied": "true", "architecture": "conv"}, "tied=true needs architecture='mlp'"),
])
def test_cross_field_rules_fail_before_any_work(tmp_path, config, match):
    """The README promises every value is checked before any work: the greedy stage never starts."""
    from aekit.cli import main

    argv = ["reproduce", "stacked", "--dataset", "no-such-dataset", "--out", str(tmp_path / "o")]
    for k, v in config.items():
        argv += ["--set", f"{k}={v}"]
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=match):
        from aekit.runner import RunSpec, build_configs

        build_configs(RunSpec(program="stacked", config=config))
    assert main(argv) == 2  # refused before the (missing) dataset is even looked for
    assert time.perf_counter() - t0 < 5 and not (tmp_path / "o").exists()


def test_a_presets_batch_shrinks_to_small_data_but_a_chosen_one_does_not():
    from aekit.experiments.presets import fit_to_data

    recipe = get_preset("stacked", "modern", 32, 150, (32, 32, 3))
    assert recipe.batch_size > 150
    fitted, notes = fit_to_data(recipe, 150, None, set())
    assert fitted.batch_size == 150 and fitted.hidden_sizes == recipe.hidden_sizes
    assert notes == [f"batch_size {recipe.batch_size} -> 150: the 150 training images"]
    assert fit_to_data(recipe, 150, None, {"batch_size"})[0].batch_size == recipe.batch_size
    table, notes = fit_to_data(recipe, 100, 10, set())  # a table: the code too, at most half its features
    assert table.hidden_sizes[-1] == 5 and table.batch_size == 100 and len(notes) == 2
