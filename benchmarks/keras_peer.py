"""Peer of ``python -m benchmarks throughput``: the same network as a Keras 3 ``model.fit``, timed in its own process.

784-256-128-256-784 with sigmoids, mean squared error, ``keras.optimizers.RMSprop`` at the tutorial's rate, batch
256, ``shuffle=True``: what a user of today's TensorFlow would write. It starts from the same weights as aekit
(from the ``.npz``). The first ``--warm-epochs`` epochs (tracing, compiling) are not timed; the clock covers the
epochs after them, read by a callback. Run as a script by the peers' interpreter, never imported by aekit:

    .venv-peers/bin/python benchmarks/keras_peer.py IN.npz --epochs 1

prints one JSON line: samples_per_s, seconds, epochs, peak_rss_mb, keras, backend.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("arrays", help=".npz with x (uint8, N x D) and W1..W4, b1..b4 (the starting weights, (in, out))")
    p.add_argument("--epochs", type=int, default=1, help="epochs timed")
    p.add_argument("--warm-epochs", type=int, default=1, help="epochs run before the clock starts")
    p.add_argument("--learning-rate", type=float, default=0.02)
    p.add_argument("--batch-size", type=int, default=256)
    args = p.parse_args(argv)

    import keras

    a = np.load(args.arrays)
    x = a["x"].astype(np.float32) / 255.0
    widths = [a[f"W{i}"].shape[1] for i in range(1, 5)]
    model = keras.Sequential([keras.Input((x.shape[1],)), *(keras.layers.Dense(w, activation="sigmoid") for w in widths)])
    model.set_weights([a[f"{k}{i}"] for i in range(1, 5) for k in ("W", "b")])
    model.compile(optimizer=keras.optimizers.RMSprop(args.learning_rate), loss="mse")

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.t0)

    clock = Clock()
    model.fit(x, x, batch_size=args.batch_size, epochs=args.warm_epochs + args.epochs, shuffle=True, verbose=0,
              callbacks=[clock])
    seconds = sum(clock.seconds[args.warm_epochs:])
    print(json.dumps({"samples_per_s": args.epochs * len(x) / seconds, "seconds": seconds, "epochs": args.epochs,
                      "keras": keras.__version__, "backend": keras.backend.backend(),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
