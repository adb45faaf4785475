"""The peer of ``python -m benchmarks frontier``: pythae's default autoencoder, trained the way its README shows.

Run as a script by the peers' interpreter (``.venv-peers/bin/python path/to/pythae_peer.py IN.npz OUT.json``),
never imported by aekit: it needs only numpy, torch and pythae, so the peers' venv does not need aekit, and
aekit's venv does not need pythae. The clock is pythae's own: from the ``TrainingPipeline`` call to its return,
which includes what the pipeline does on its own (checking the data, evaluating on the validation split every
epoch, keeping and saving the best model). The validation MSE of each epoch comes from pythae's own evaluation
(its loss is the per-image sum of squared errors: divided by the pixels, it is the MSE); the test MSE is measured
once, after the clock stops, on the model the pipeline kept.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time


def train(arrays: dict, code_size: int, epochs: int, learning_rate: float, batch_size: int, seed: int) -> dict:
    """pythae's ``AE`` with its default MLP (input-512-code-512-input, ReLU, sigmoid output), Adam."""
    from importlib.metadata import version

    import numpy as np
    import torch
    from pythae.models import AE, AEConfig
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    shape = tuple(int(s) for s in arrays["image_shape"]) or (arrays["x_train"].shape[1],)
    as_input = lambda x: (x.astype(np.float32) / 255.0).reshape(len(x), 1, *shape) if len(shape) == 2 else \
        x.astype(np.float32) / 255.0  # noqa: E731
    x_train, x_val, x_test = (as_input(arrays[k]) for k in ("x_train", "x_val", "x_test"))
    pixels = int(np.prod(shape))
    points: list[dict] = []

    class Clock(TrainingCallback):
        """Records pythae's validation loss of every epoch against the seconds since the pipeline started."""

        def on_log(self, training_config, logs, **kwargs):
            if "eval_epoch_loss" in logs:
                points.append({"epoch": int(kwargs.get("global_step", len(points) + 1)),
                               "seconds": time.perf_counter() - t0,
                               "validation_mse": float(logs["eval_epoch_loss"]) / pixels})

    with tempfile.TemporaryDirectory() as out:
        config = BaseTrainerConfig(output_dir=out, num_epochs=epochs, learning_rate=learning_rate,
                                   per_device_train_batch_size=batch_size, per_device_eval_batch_size=batch_size,
                                   seed=seed, no_cuda=not torch.cuda.is_available())
        model = AE(AEConfig(input_dim=(1, *shape) if len(shape) == 2 else shape, latent_dim=code_size))
        pipeline = TrainingPipeline(training_config=config, model=model)
        t0 = time.perf_counter()
        pipeline(train_data=x_train, eval_data=x_val, callbacks=[Clock()])
        seconds = time.perf_counter() - t0
    best = pipeline.trainer._best_model.eval()  # what the pipeline saved as its final model
    device = next(best.parameters()).device
    sse = 0.0
    with torch.no_grad():
        for i in range(0, len(x_test), 1000):
            x = torch.from_numpy(x_test[i:i + 1000]).to(device)
            recon = best.decoder(best.encoder(x).embedding).reconstruction
            sse += float(((recon.reshape(len(x), -1) - x.reshape(len(x), -1)) ** 2).sum())
    return {"label": f"pythae AE (default MLP, Adam {learning_rate:g}, batch {batch_size}, {epochs} epochs)",
            "points": points, "seconds": seconds, "test_mse": sse / (len(x_test) * pixels), "epochs": epochs,
            "threads": torch.get_num_threads(), "versions": {"pythae": version("pythae"), "torch": torch.__version__}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("arrays", help=".npz with x_train, x_val, x_test (uint8, one row an image) and image_shape")
    p.add_argument("out", help="the JSON this writes")
    p.add_argument("--code-size", type=int, required=True)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=8)  # pythae's default seed
    args = p.parse_args(argv)
    import numpy as np

    with np.load(args.arrays) as f:
        arrays = {k: f[k] for k in f.files}
    result = train(arrays, args.code_size, args.epochs, args.learning_rate, args.batch_size, args.seed)
    with open(args.out, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
