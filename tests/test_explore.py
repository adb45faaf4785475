"""aekit explore without a browser: the page builds for every architecture, holds what page.js reads, and
every user mistake is one line and exit 2 before any work. (tests/test_explore_browser.py runs the page.)"""

import json
import re

import numpy as np
import pytest
import torch
from torch import nn

from aekit.cli import main
from aekit.errors import DataError
from aekit.explore.decoder import decoder_program
from aekit.explore.page import page_data, render
from aekit.explore.source import open_source

ARCHITECTURES = ("mlp", "tied", "batchnorm-gelu", "pca-residual", "conv", "vae", "conv-vae", "estimator")


def page_json(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="aekit-data">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_every_architecture_builds_a_page(explore_runs, name, tmp_path):
    out = tmp_path / "page.html"
    assert main(["explore", str(explore_runs[name]), "--dataset", str(explore_runs["data"]), "-o", str(out)]) == 0
    html = out.read_text()
    data = page_json(html)
    assert data["n"] == 40 and len(data["decoder"]["ops"]) >= 2
    assert '<body data-ready="false" data-points="0">' in html  # page.js sets both once it has drawn
    assert "http://" not in html and "https://" not in html and "<link" not in html  # nothing fetched
    assert out.stat().st_size < 2_000_000  # the tutorial decoder (128 -> 256 -> 784) is most of it


def test_max_points_and_tsne(explore_runs):
    src = open_source(str(explore_runs["mlp"]), dataset=str(explore_runs["data"]))
    data = page_data(src, max_points=25, method="tsne", seed=1)
    assert data["n"] == 25 and data["n_total"] == 40 and data["map"] == "tsne"
    assert page_json(render(data))["n"] == 25


def test_input_file_without_labels(explore_runs, tmp_path, capsys):
    x = np.load(explore_runs["data"])["x_test"][:7]
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "p.html"
    assert main(["explore", str(explore_runs["conv"]), "--input", str(tmp_path / "x.npy"), "-o", str(out)]) == 0
    data = page_json(out.read_text())
    assert data["n"] == 7 and "labels" not in data["arrays"]
    assert "7 points" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["-o", "{tmp}"], "is an existing folder"),
    (["--max-points", "0"], "--max-points 0 must be at least 1"),
    ([], "no such dataset or path"),  # the run names its data file's stem, not a path
    (["--dataset", "nope"], "--dataset 'nope': no such dataset"),
])
def test_mistakes_are_one_line(explore_runs, tmp_path, capsys, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    extra = [] if "--dataset" in argv or argv == [] else ["--dataset", str(explore_runs["data"])]
    assert main(["explore", str(explore_runs["mlp"]), *extra, *argv, *([] if "-o" in argv else ["-o", str(tmp_path / "p.html")])]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_estimator_without_dataset_says_what_to_pass(explore_runs, tmp_path, capsys):
    assert main(["explore", str(explore_runs["estimator"]), "-o", str(tmp_path / "p.html")]) == 2
    assert "pass --dataset NAME_OR_PATH or --input FILE" in capsys.readouterr().err
    assert not (tmp_path / "p.html").exists()


def test_an_operation_the_page_cannot_run_is_named():
    class Odd(nn.Module):
        def decode(self, z):
            return torch.softmax(z, dim=1)

    with pytest.raises(DataError, match="softmax"):
        decoder_program(Odd(), 4)


def test_float16_weights_halve_the_decoder_and_say_what_it_costs(explore_runs):
    src = open_source(str(explore_runs["pca-residual"]), dataset=str(explore_runs["data"]))
    auto, half = page_data(src), page_data(src, weights="float16")
    assert auto["weights_dtype"] == "float32" and auto["weights_error"] == 0.0  # a small page stays exact
    n_weights = len(decoder_program(src.autoencoder, half["code_size"]).arrays)  # packed first
    weights = half["table"][:n_weights]
    assert all(dtype == "float16" for dtype, _, _ in weights)
    assert auto["table"][0][0] == "float32"
    assert 0 < half["weights_error"] < 1e-2  # measured: rounding the weights moves decoded pixels this little
    with pytest.raises(Exception, match="--weights 'bf16' is not allowed"):
        page_data(src, weights="bf16")
