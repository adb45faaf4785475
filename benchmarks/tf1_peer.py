"""Peer of ``python -m benchmarks throughput``: the tutorial's own TF1 program 1 (tf.compat.v1), timed in its own process.

The code is the seed's (placeholder, N(0, 1) variables, sigmoid layers, ``tf.train.RMSPropOptimizer``, one
``sess.run([train_step, loss], feed_dict=...)`` per batch); only the data source changed: the images come from an
``.npz`` and :class:`NextBatch` hands them out the way the tutorial's ``mnist.train.next_batch`` does (float32 in
[0, 1], reshuffled every epoch). The weights start from the ``.npz`` too, so that it trains the same saturated
network as aekit in the same run. Run as a script by the peers' interpreter, never imported by aekit (it needs
only numpy and tensorflow):

    .venv-peers/bin/python benchmarks/tf1_peer.py IN.npz --steps 214 --warm-steps 20

prints one JSON line: samples_per_s, seconds, steps, peak_rss_mb, tensorflow.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np


class NextBatch:
    """``mnist.train.next_batch``: consecutive slices of a permutation drawn anew at every epoch's start."""

    def __init__(self, images: np.ndarray, seed: int = 0):
        self.images, self.rng, self.pos = images, np.random.default_rng(seed), 0
        self.perm = self.rng.permutation(len(images))

    def __call__(self, batch_size: int) -> np.ndarray:
        if self.pos + batch_size > len(self.images):
            self.perm, self.pos = self.rng.permutation(len(self.images)), 0
        idx = self.perm[self.pos:self.pos + batch_size]
        self.pos += batch_size
        return self.images[idx]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("arrays", help=".npz with x (uint8, N x D) and W1..W4, b1..b4 (the starting weights, (in, out))")
    p.add_argument("--steps", type=int, default=214, help="steps timed (214: one epoch of 55,000 at 256)")
    p.add_argument("--warm-steps", type=int, default=20, help="steps run before the clock starts")
    p.add_argument("--learning-rate", type=float, default=0.02)
    p.add_argument("--batch-size", type=int, default=256)
    args = p.parse_args(argv)

    import tensorflow.compat.v1 as tf

    tf.disable_v2_behavior()
    a = np.load(args.arrays)
    next_batch = NextBatch(a["x"].astype(np.float32) / 255.0)  # input_data's images: float32 in [0, 1]
    input_size = a["x"].shape[1]

    # -- the tutorial's graph (program 1) --
    x = tf.placeholder(tf.float32, shape=[None, input_size])
    out = x
    for i in range(1, 5):
        W = tf.Variable(a[f"W{i}"])
        b = tf.Variable(a[f"b{i}"])
        out = tf.nn.sigmoid(tf.matmul(out, W) + b)
    y_pred, y_true = out, x
    loss = tf.reduce_mean(tf.pow(y_true - y_pred, 2))
    train_step = tf.train.RMSPropOptimizer(args.learning_rate).minimize(loss)

    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(args.warm_steps):
            sess.run([train_step, loss], feed_dict={x: next_batch(args.batch_size)})
        t0 = time.perf_counter()
        for _ in range(args.steps):
            batch_xs = next_batch(args.batch_size)
            _, current_loss = sess.run([train_step, loss], feed_dict={x: batch_xs})
        seconds = time.perf_counter() - t0
    print(json.dumps({"samples_per_s": args.steps * args.batch_size / seconds, "seconds": seconds, "steps": args.steps,
                      "loss": float(current_loss), "tensorflow": tf.__version__,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
