"""Peak resident memory of one aekit training epoch on a whole dataset, measured in a fresh process.

Usage: python -m benchmarks.rss DATASET  -> one JSON line: peak_rss_mb, n_images, features
"""

import json
import resource
import sys

import numpy as np
import torch


def main(dataset: str) -> None:
    from aekit.data.batches import DeviceBatches
    from aekit.data.catalog import load_dataset
    from aekit.models.stacked import AutoencoderConfig, StackedAutoencoder
    from aekit.runtime import generator, setup
    from aekit.training.loop import fit
    from aekit.training.objectives import reconstruction_loss
    from aekit.training.optim import TF1RMSprop

    setup(torch.device("cpu"))
    data = load_dataset(dataset)
    images = np.concatenate([data.validation.images, data.train.images])  # all training images, e.g. 60k x 784
    del data
    model = StackedAutoencoder(AutoencoderConfig(input_size=images.shape[1], hidden_sizes=(256, 128)), generator(0))
    batches = DeviceBatches(images, batch_size=256)
    fit(model, reconstruction_loss, TF1RMSprop(model.parameters(), lr=0.02), batches, 1, display_step=0, progress=False)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": rss, "n_images": len(images), "features": images.shape[1]}))


if __name__ == "__main__":
    main(sys.argv[1])
