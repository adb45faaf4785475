"""The reference loop, written the way most tutorials write it; run in a fresh interpreter.

``TensorDataset`` of float32 + ``DataLoader(shuffle=True)`` + ``torch.optim.RMSprop``, no other
settings: default threads, denormals not flushed, ``loss.item()`` every step.

Usage: python -m benchmarks.reference STATE.pt IMAGES.npy HIDDEN_SIZES STEPS
prints one JSON line: samples_per_s, seconds, steps, peak_rss_mb.
"""

import json
import resource
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def build(sizes):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.Sigmoid()]
    return nn.Sequential(*layers)


def main(state_path, images_path, hidden, steps):
    hidden = [int(h) for h in hidden.split(",")]
    x = torch.tensor(np.load(images_path).astype(np.float32) / 255.0)
    sizes = [x.shape[1], *hidden, *hidden[-2::-1], x.shape[1]]
    model = build(sizes)
    state = torch.load(state_path)
    model.load_state_dict(dict(zip(model.state_dict().keys(), state.values())))
    loader = DataLoader(TensorDataset(x), batch_size=256, shuffle=True)
    opt = torch.optim.RMSprop(model.parameters(), lr=0.02)
    criterion = nn.MSELoss()
    done, running = 0, 0.0
    t0 = time.perf_counter()
    while done < steps:
        for (batch,) in loader:
            opt.zero_grad()
            loss = criterion(model(batch), batch)
            loss.backward()
            opt.step()
            running += loss.item()
            done += 1
            if done == steps:
                break
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"samples_per_s": steps * 256 / seconds, "seconds": seconds, "steps": steps, "peak_rss_mb": rss}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
