import dataclasses

import pytest

from aekit.errors import ConfigError
from aekit.experiments.presets import (
    PretrainProgram,
    StackedProgram,
    apply_overrides,
    get_preset,
    parse_overrides,
    scale_epochs,
)


def test_seed_presets_are_the_tutorials_numbers():
    s, p = get_preset("stacked"), get_preset("pretrain")
    assert (s.learning_rate, s.training_epochs, s.batch_size, s.display_step, s.examples_to_show) == (0.02, 50, 256, 5, 10)
    assert s.hidden_sizes == (256, 128) and s.activation == "sigmoid" and s.init == "normal"
    assert (p.pretrain_learning_rate, p.finetune_learning_rate, p.pretrain_epochs, p.finetune_epochs) == (0.02, 0.5, 100, 200)
    assert p.hidden_sizes == (128, 64) and p.head_init == "zeros" and p.finetune_optimizer == "sgd"


def test_overrides_are_typed():
    cfg = apply_overrides(StackedProgram(), parse_overrides(["batch_size=128", "learning_rate=0.01", "hidden_sizes=512,64"]))
    assert cfg.batch_size == 128 and cfg.learning_rate == 0.01 and cfg.hidden_sizes == (512, 64)


def test_unknown_key_names_the_nearest():
    with pytest.raises(ConfigError, match=r"--set batch_sise: unknown key; did you mean 'batch_size'\? valid keys: "):
        apply_overrides(StackedProgram(), {"batch_sise": "3"})


@pytest.mark.parametrize("pair, match", [
    ("batch_size=0", r"batch_size=0 must be a positive integer \(>= 1\)"),
    ("training_epochs=-1", r"training_epochs=-1 must be a positive integer"),
    ("learning_rate=0", "learning_rate=0.0 must be positive"),
    ("batch_size=abc", r"batch_size='abc': expected an integer"),
    ("hidden_sizes=a,b", r"expected a list of integers like \[256, 128\]"),
    ("hidden_sizes=0", r"hidden_sizes=\(0,\) must be one or more positive integers"),
])
def test_bad_values(pair, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(StackedProgram(), parse_overrides([pair]))


def test_malformed_pair():
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["batch_size"])


def test_scale_epochs():
    cfg = scale_epochs(PretrainProgram(), 0.01)
    assert (cfg.pretrain_epochs, cfg.finetune_epochs) == (1, 2)
    assert cfg.layerwise_epochs == 0  # off stays off
    assert scale_epochs(StackedProgram(), 2).training_epochs == 100
    with pytest.raises(ConfigError, match="--epochs-scale 0.0 must be positive"):
        scale_epochs(StackedProgram(), 0.0)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="--preset .fancy. has no .stacked. program; available presets: modern, tutorial"):
        get_preset("stacked", "fancy")


def test_presets_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        StackedProgram().batch_size = 3


def test_typed_values_from_toml():
    cfg = apply_overrides(StackedProgram(), {"hidden_sizes": [64, 8], "learning_rate": 1, "training_epochs": 3})
    assert cfg.hidden_sizes == (64, 8) and cfg.learning_rate == 1.0 and cfg.training_epochs == 3
    for key, value, match in [("training_epochs", 2.5, "expected an integer"), ("learning_rate", "x", "expected a number"),
                              ("hidden_sizes", [1.5], "expected a list of integers"), ("batch_size", True, "expected an integer")]:
        with pytest.raises(ConfigError, match=match):
            apply_overrides(StackedProgram(), {key: value})


def test_cli_seed_configs_are_the_presets():
    # --epochs-scale 1 and no overrides must give exactly the seed programs (no option switched on by accident)
    from aekit.runner import RunSpec, build_configs

    configs = build_configs(RunSpec(program="all"))
    assert configs == {"stacked": StackedProgram(), "pretrain": PretrainProgram()}


def test_code_size():
    from aekit.experiments.presets import with_code_size

    assert with_code_size(get_preset("stacked", "modern"), 32).hidden_sizes[-1] == 32
    assert with_code_size(StackedProgram(), None) == StackedProgram()
    with pytest.raises(ConfigError, match="--code-size 0 must be a positive integer"):
        with_code_size(StackedProgram(), 0)


def test_tutorial_preset_and_its_deprecated_alias(capsys):
    from aekit.experiments import presets
    from aekit.runner import RunSpec, build_configs

    assert presets.get_preset("stacked", "tutorial") == presets.get_preset("stacked", "seed") == presets.StackedProgram()
    assert RunSpec().preset == "tutorial"
    configs = build_configs(RunSpec(program="all", preset="seed"))
    assert configs["pretrain"] == presets.PretrainProgram()
    assert "preset 'seed' is now called 'tutorial'" in capsys.readouterr().err


def test_one_key_means_the_same_in_both_programs():
    from aekit.runner import RunSpec, build_configs

    c = build_configs(RunSpec(program="all", config={"learning_rate": "0.01", "finetune.learning_rate": "0.2",
                                                     "batch_size": "64", "stacked.optimizer": "adam"}))
    assert c["stacked"].learning_rate == 0.01 and c["pretrain"].pretrain_learning_rate == 0.01
    assert c["pretrain"].finetune_learning_rate == 0.2 and c["pretrain"].pretrain_optimizer == "rmsprop-tf1"
    assert c["stacked"].batch_size == c["pretrain"].batch_size == 64 and c["stacked"].optimizer == "adam"
    c = build_configs(RunSpec(program="pretrain", config={"pretrain.epochs": "3", "finetune.epochs": "4"}))
    assert (c["pretrain"].pretrain_epochs, c["pretrain"].finetune_epochs) == (3, 4)
    c = build_configs(RunSpec(program="all", config={"training_epochs": "2", "pretrain_epochs": "5"}))
    assert (c["stacked"].training_epochs, c["pretrain"].pretrain_epochs) == (2, 5)  # the named field wins


@pytest.mark.parametrize("config, match", [
    ({"finetune.batch_sise": "3"}, "unknown key"),
    ({"stacked.finetune_epochs": "3"}, "unknown key"),
    ({"pretrain.learning_rate": "0.1", "pretrain_learning_rate": "0.2"}, "two keys set pretrain's pretrain_learning_rate"),
    ({"head_init": "zeroes"}, "head_init='zeroes' is not allowed; choose one of: 'zeros'"),
    ({"finetune_optimizer": "adamm"}, "finetune_optimizer='adamm' is not allowed"),
])
def test_bad_keys_fail_before_any_work(config, match):
    from aekit.runner import RunSpec, build_configs

    with pytest.raises(ConfigError, match=match):
        build_configs(RunSpec(program="all", config=config))


@pytest.mark.parametrize("key, value", [("activation", "swish"), ("code_activation", "swish"), ("architecture", "gan"),
                                        ("schedule", "linear"), ("precision", "fp8"), ("noise", "salt")])
def test_every_text_field_has_its_choices(key, value):
    with pytest.raises(ConfigError, match=f"{key}='{value}' is not allowed; choose one of"):
        apply_overrides(StackedProgram(), {key: value})
