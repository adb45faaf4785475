import json

import numpy as np
import torch

from aekit.cli import main
from aekit.training.propagation import PoissonClassifier, knn_graph, neighbours


def _blobs(n_per=60, seed=0):
    """Three clusters on a ring, well apart; labels 0..2."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]])
    x = torch.cat([c + 0.3 * torch.randn(n_per, 3, generator=g) for c in centres])
    return x, torch.arange(3).repeat_interleave(n_per)


def test_poisson_learning_labels_clusters_from_one_label_each_and_extends_to_new_points():
    x, y = _blobs()
    labeled = torch.tensor([0, 60, 120])
    clf = PoissonClassifier(x, labeled, y[labeled], 3, k=8)
    assert (clf.scores.argmax(1) == y).float().mean() > 0.98
    new, new_y = _blobs(seed=1)
    assert (clf.predict(new) == new_y).float().mean() > 0.98
    assert 50 <= clf.iterations < 5000  # the walk mixed before the cap


def test_the_graph_is_symmetric_with_k_neighbours_each_and_no_self_loops():
    x, _ = _blobs(20)
    w = knn_graph(x, 5).to_dense()
    assert torch.allclose(w, w.T) and (w.diagonal() == 0).all()
    assert ((w > 0).sum(1) >= 5).all()
    d, i = neighbours(x, x, 5, exclude_self=True)
    assert (i != torch.arange(len(x))[:, None]).all() and (d[:, 1:] >= d[:, :-1]).all()


def test_fewlabels_propagate_reports_codes_pixels_and_the_transductive_arm(tiny_npz, tmp_path, capsys):
    out = tmp_path / "fl"
    args = ["fewlabels", "--dataset", str(tiny_npz), "--labels", "20", "--seeds", "1", "--method", "propagate",
            "--out", str(out), "--set", "hidden_sizes=32,8", "--set", "epochs=2", "--set", "batch_size=32"]
    assert main(args) == 0
    r = json.loads((out / "fewlabels.json").read_text())
    assert r["method"] == "propagate" and [row["labels"] for row in r["rows"]] == [20]
    details = r["rows"][0]["details"]
    assert set(details) == {"pretrained", "scratch", "pretrained_transductive"}
    assert all(0 <= d["accuracy"] <= 1 and 0 <= d["validation_accuracy"] <= 1 for d in details.values())
    assert "transductive" in (out / "fewlabels.md").read_text()
    assert not np.isnan(r["summary"][0]["gain_points"])


def test_fewlabels_propagate_on_a_table_speaks_of_rows_and_inputs(tmp_path, capsys):
    import pandas as pd

    rng = np.random.default_rng(0)
    kind = np.arange(150) % 3
    frame = pd.DataFrame({"a": 100 * kind + rng.normal(0, 2, 150), "b": rng.normal(0, 1, 150),
                          "site": rng.choice(["north", "south"], 150), "kind": kind})
    frame.to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "fl"
    assert main(["fewlabels", "--dataset", str(tmp_path / "rows.csv"), "--label-column", "kind", "--labels", "9",
                 "--seeds", "1", "--method", "propagate", "--out", str(out), "--set", "hidden_sizes=8,2",
                 "--set", "epochs=2", "--set", "batch_size=16"]) == 0
    md = (out / "fewlabels.md").read_text()
    assert "training rows" in md and "one seed" in md and "inputs (no pretraining)" in md and "images" not in md
    r = json.loads((out / "fewlabels.json").read_text())
    assert r["rows"][0]["scratch_accuracy"] > 0.6  # column a carries the class: far above chance (1/3)
