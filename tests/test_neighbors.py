"""Nearest-neighbour anomaly scores: the space distances are taken in."""

import numpy as np
import torch

from aekit.training.neighbors import NORM_POWER, knn_distance

CPU = torch.device("cpu")


def _strokes(n: int, seed: int) -> np.ndarray:
    """n uint8 28x28 images, each a bright bar at a random place."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 28, 28), np.uint8)
    for img, (y, x) in zip(out, rng.integers(4, 20, size=(n, 2))):
        img[y:y + 6, x:x + 2] = 200
    return out.reshape(n, -1)


def test_a_dimmed_copy_of_a_training_image_stays_near_it_while_other_shapes_stay_far():
    bank = _strokes(40, 0)
    dimmed = (bank[:5] * 0.4).astype(np.uint8)  # the same strokes, faint
    blob = np.zeros((5, 28, 28), np.uint8)
    blob[:, 8:20, 8:20] = 90  # no bar at all, about as bright as the faint strokes in total
    blob = blob.reshape(5, -1)
    plain = {name: knn_distance(bank, x, 1, True, CPU, norm_power=0.0) for name, x in (("dim", dimmed), ("blob", blob))}
    normed = {name: knn_distance(bank, x, 1, True, CPU, norm_power=NORM_POWER)
              for name, x in (("dim", dimmed), ("blob", blob))}
    scale = np.sqrt((bank[:5].astype(np.float64) / 255).sum(1)) ** NORM_POWER  # the bank's norms, for comparable units
    assert np.all(normed["dim"] * scale < 0.9 * plain["dim"])  # brightness counts less ...
    assert normed["dim"].max() < normed["blob"].min()  # ... and a dim stroke is still nearer than a blob
    cosine = knn_distance(bank, dimmed, 1, True, CPU, norm_power=1.0)
    assert cosine.max() < 0.05  # at power 1 only the direction counts


def test_tables_are_compared_as_they_are():
    rng = np.random.default_rng(0)
    bank = rng.normal(size=(30, 4)).astype(np.float32)
    for power in (0.0, NORM_POWER, 1.0):
        np.testing.assert_allclose(knn_distance(bank, 3 * bank[:3], 1, False, CPU, norm_power=power),
                                   np.linalg.norm(3 * bank[:3][:, None] - bank[None], axis=2).min(1), rtol=1e-4)
