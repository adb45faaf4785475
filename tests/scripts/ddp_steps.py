"""Run under ``torchrun --nproc-per-node N`` (or alone): K epochs of the tutorial's stacked autoencoder through
aekit's one training loop on fixed data, then save this rank's weights to OUT/rank<R>.pt."""

import sys
from pathlib import Path

import numpy as np
import torch

from aekit.data.batches import make_batches
from aekit.models.stacked import AutoencoderConfig, StackedAutoencoder
from aekit.runtime import distributed, generator, setup
from aekit.training.loop import fit
from aekit.training.objectives import reconstruction_loss
from aekit.training.optim import TF1RMSprop


def main(out: str, epochs: int) -> None:
    with distributed("cpu") as (device, w):
        setup(device)
        images = np.random.default_rng(0).integers(0, 256, size=(640, 64), dtype=np.uint8)
        model = StackedAutoencoder(AutoencoderConfig(input_size=64, hidden_sizes=(32, 8)), generator(0))
        batches = make_batches(images, batch_size=64, seed=5, rank=w.rank, world_size=w.size)
        hist = fit(model, reconstruction_loss, TF1RMSprop(model.parameters(), lr=0.02), batches, epochs,
                   display_step=0, progress=False)
        torch.save({"state": model.state_dict(), "loss": hist.epoch_loss}, Path(out) / f"rank{w.rank}.pt")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
