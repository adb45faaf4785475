"""Throughput benchmark: how close aekit's training runs to this machine's matmul limit.

In one run it measures (a) fp32 matmul GFLOP/s, large square and at the model's shapes;
(b) aekit's training samples/s and achieved GFLOP/s on the seed stacked autoencoder and the
seed pretraining network, and the cost of the per-epoch resume-state snapshot; (c) a tutorial-style
reference loop on the same trained weights, and the peers (the tutorial's TF1 code and a Keras 3
``model.fit``, each in its own process, see :mod:`benchmarks.peers`); (d) encode throughput; (e) peak RSS
of a training process on the whole training set; (f) the command itself, ``aekit reproduce stacked``, end
to end, and the start-up of ``aekit --help`` and ``aekit datasets`` (:mod:`benchmarks.command`); (g) the
modern recipes and the conv autoencoder, and the seconds the modern preset needs to beat PCA
(:mod:`benchmarks.recipe_speed`). Every speed is reported beside a ratio to
something measured in the same run. Training FLOPs are counted as 6 x weights x samples (forward 2, backward 4).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.common import finish, machine, markdown_table, script_main, timed
from benchmarks.recipe_speed import CONV_COLOR, CONV_PRESET

if TYPE_CHECKING:  # torch and the training code are imported where a measurement runs, so --help stays fast
    import torch

NAME = "throughput"


def matmul_gflops(m: int, k: int, n: int, dtype: str = "float32") -> float:
    import torch

    a, b = torch.randn(m, k).to(getattr(torch, dtype)), torch.randn(k, n).to(getattr(torch, dtype))
    return 2 * m * k * n / timed(lambda: torch.mm(a, b)) / 1e9


def n_weights(model: torch.nn.Module) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if name.endswith("weight"))


def _train_rate(model, objective, opt, batches, epochs, **kw) -> float:
    from aekit.training.loop import fit

    hist = fit(model, objective, opt, batches, epochs, display_step=0, progress=False, **kw)
    return epochs * len(batches) * batches.batch_size / hist.seconds


def _subprocess_json(args: list[str]) -> dict:
    """``python -m ARGS`` in a fresh interpreter (``benchmarks.X`` found through PYTHONPATH); its last line, as JSON."""
    from benchmarks import subprocess_env

    out = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, check=True, env=subprocess_env())
    return json.loads(out.stdout.strip().splitlines()[-1])


def snapshot_cost(model, opt, batches, epochs: int, folder: Path) -> dict:
    """Training with the resume state saved every epoch (as ``aekit reproduce`` does) against without, in turn:
    ``cost`` is the fraction of an epoch the snapshot adds, and ``copy_seconds`` what the training thread waits
    for (the CPU copy; the file is written by a background thread)."""
    from aekit.training.objectives import reconstruction_loss
    from aekit.training.resume import ResumeStore

    plain = with_store = 0.0
    for i in range(2):
        plain += _train_rate(model, reconstruction_loss, opt, batches, epochs)
        phase = ResumeStore(folder / str(i), {"benchmark": "throughput"}).phase("train")
        with_store += _train_rate(model, reconstruction_loss, opt, batches, epochs, state=phase)
    phase = ResumeStore(folder / "copy", {"benchmark": "throughput"}).phase("train")
    copy = timed(lambda: phase.save(model, opt, None, None, next_epoch=1, done=False, history={}), 0.1)
    phase.store.flush()
    return {"cost": plain / with_store - 1, "copy_seconds": copy, "epochs": epochs}


def run(dataset: str = "fashion-mnist", warm_epochs: int = 5, epochs: int = 2, compile: bool = False,
        log=print, peer_python: str | None = None, command_epochs_scale: float = 0.1, recipe_images: int = 16384,
        quality_epochs: int = 3, peers: bool = True, command_pairs: int = 3) -> dict:
    import statistics

    import numpy as np
    import torch

    from aekit.data.arrays import from_arrays
    from aekit.data.batches import DeviceBatches
    from aekit.data.catalog import load_dataset
    from aekit.models.classifier import EncoderClassifier
    from aekit.models.stacked import AutoencoderConfig, StackedAutoencoder
    from aekit.runtime import generator, setup
    from aekit.training.evaluate import encode
    from aekit.training.loop import fit
    from aekit.training.objectives import classification_loss, reconstruction_loss
    from aekit.training.optim import TF1RMSprop
    from benchmarks.ceiling import ceiling_with_elementwise, step_matmul_gflops, step_parts
    from benchmarks.color import patches
    from benchmarks.command import reproduce, startup
    from benchmarks.peers import run_peer, run_peers, write_arrays
    from benchmarks.recipe_speed import measure, recipes, time_to_quality

    device = torch.device("cpu")
    setup(device)
    data = load_dataset(dataset)
    x = data.train.images
    log(f"throughput on {data.summary()}, {torch.get_num_threads()} threads")
    res: dict = {"dataset": data.name, "n_train": len(x), "machine": machine(), "threads": torch.get_num_threads()}

    # (a) the machine's matmul limit
    big = matmul_gflops(2048, 2048, 2048)
    enc_sizes = [x.shape[1], 256, 128]
    shapes = [(256, a, b) for a, b in zip(enc_sizes[:-1], enc_sizes[1:])]
    res["matmul_gflops"] = big
    res["matmul_gflops_model_shapes"] = {f"{m}x{k}x{n}": matmul_gflops(m, k, n) for m, k, n in shapes}
    log(f"(a) matmul 2048^3: {big:.1f} GFLOP/s")
    seed_sizes = [x.shape[1], 256, 128, 256, x.shape[1]]
    ceiling = step_matmul_gflops(seed_sizes, 256)
    res["seed_step_matmuls_fraction_of_matmul"] = ceiling / big
    log(f"    the seed step's matmuls alone: {ceiling:.1f} GFLOP/s ({ceiling / big:.2f} of the limit: the ceiling)")
    res["seed_step_floor"] = floor = ceiling_with_elementwise(seed_sizes, 256, ceiling, big)
    log(f"    with the step's elementwise work at its floor: {floor['eager_fraction_of_matmul']:.2f} of the limit with "
        f"PyTorch's kernels, {floor['one_pass_fraction_of_matmul']:.2f} with every part fused into one pass")

    # (b) aekit, seed stacked autoencoder: train a while (saturating the sigmoids), then measure
    model = StackedAutoencoder(AutoencoderConfig(input_size=x.shape[1], hidden_sizes=(256, 128)), generator(0))
    opt = TF1RMSprop(model.parameters(), lr=0.02)
    batches = DeviceBatches(x, batch_size=256, seed=0)
    fit(model, reconstruction_loss, opt, batches, warm_epochs, display_step=0, progress=False)
    keep = tempfile.TemporaryDirectory()  # the peers' arrays, reused in (f)
    arrays = Path(keep.name) / "peers.npz"
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(model.state_dict(), Path(tmp) / "state.pt")
        np.save(Path(tmp) / "x.npy", x)
        rate = _train_rate(model, reconstruction_loss, opt, batches, epochs)
        flops = 6 * n_weights(model)
        res.update(aekit_samples_per_s=rate, aekit_gflops=rate * flops / 1e9, seconds_per_epoch=len(batches) * 256 / rate)
        log(f"(b) aekit seed stacked: {rate:,.0f} samples/s, {res['aekit_gflops']:.1f} GFLOP/s")
        # (c) the reference loop, same weights, one epoch, fresh interpreter
        ref = _subprocess_json(["benchmarks.reference", str(Path(tmp) / "state.pt"), str(Path(tmp) / "x.npy"),
                                "256,128", str(len(batches))])
        write_arrays(arrays, x, model.state_dict())
        res["peers"] = run_peers(arrays, len(batches), peer_python, log, skip=not peers)
        res["resume_snapshot"] = snapshot_cost(model, opt, batches, epochs, Path(tmp) / "resume")
    res["reference_samples_per_s"] = ref["samples_per_s"]
    res["speedup_vs_reference"] = rate / ref["samples_per_s"]
    res["gflops_fraction_of_matmul"] = res["aekit_gflops"] / big
    parts = step_parts(model, reconstruction_loss, opt, next(iter(batches.epoch(0)))[0])
    parts["matmul_seconds"] = floor["matmul_seconds"]
    res["seed_step"] = parts
    log(f"    a seed step: {parts['step_seconds'] * 1e3:.2f} ms; matmuls alone {parts['matmul_seconds'] * 1e3:.2f} ms, "
        f"forward + backward {parts['forward_backward_seconds'] * 1e3:.2f} ms, optimizer {parts['optimizer_seconds'] * 1e3:.2f} ms")
    log(f"(c) reference loop: {ref['samples_per_s']:,.0f} samples/s -> aekit is {res['speedup_vs_reference']:.2f}x")
    for name, peer in res["peers"].items():
        if isinstance(peer, dict) and "samples_per_s" in peer:
            res[f"speedup_vs_{name}"] = rate / peer["samples_per_s"]
            log(f"    {name}: {peer['samples_per_s']:,.0f} samples/s -> aekit is {res[f'speedup_vs_{name}']:.2f}x")
    log(f"    resume snapshot every epoch: {res['resume_snapshot']['cost']:+.1%} of an epoch")

    if compile:
        compiled = torch.compile(model)
        t0 = time.perf_counter()
        fit(compiled, reconstruction_loss, opt, batches, 1, display_step=0, progress=False)
        res["compile_first_epoch_s"] = time.perf_counter() - t0
        res["compiled_samples_per_s"] = _train_rate(compiled, reconstruction_loss, opt, batches, epochs)
        log(f"    torch.compile: {res['compiled_samples_per_s']:,.0f} samples/s")

    # (b') the seed pretraining network: pretraining and fine-tuning phases
    ae = StackedAutoencoder(AutoencoderConfig(input_size=x.shape[1], hidden_sizes=(128, 64)), generator(0))
    pre_opt = TF1RMSprop(ae.parameters(), lr=0.02)
    fit(ae, reconstruction_loss, pre_opt, batches, 1, display_step=0, progress=False)
    pre_rate = _train_rate(ae, reconstruction_loss, pre_opt, batches, epochs)
    clf = EncoderClassifier(ae.encoder, 64, max(data.n_classes, 2))
    lab = DeviceBatches(x, data.train.labels if data.train.labels is not None else np.zeros(len(x), np.int64), batch_size=256)
    fine_rate = _train_rate(clf, classification_loss, torch.optim.SGD(clf.parameters(), lr=0.5, foreach=True), lab, epochs)
    res["pretrain"] = {"pretrain_samples_per_s": pre_rate, "pretrain_gflops": pre_rate * 6 * n_weights(ae) / 1e9,
                       "finetune_samples_per_s": fine_rate, "finetune_gflops": fine_rate * 6 * n_weights(clf) / 1e9}
    log(f"(b) aekit seed pretrain: {pre_rate:,.0f} samples/s pretraining, {fine_rate:,.0f} fine-tuning")

    # (d) encoding
    test = data.test.images
    res["encode_images_per_s"] = len(test) / timed(lambda: encode(model, test, device))
    log(f"(d) encode: {res['encode_images_per_s']:,.0f} images/s")

    # (e) peak RSS of a fresh process training on the whole training set
    rss = _subprocess_json(["benchmarks.rss", dataset])
    res["peak_rss_mb"] = rss["peak_rss_mb"]
    res["peak_rss_images"] = rss["n_images"]
    res["reference_peak_rss_mb"] = ref["peak_rss_mb"]
    log(f"(e) peak RSS training on {rss['n_images']} x {rss['features']}: {rss['peak_rss_mb']:.0f} MB")

    # (f) the command users run, end to end; with the TF1 code, run in turn with it ``command_pairs`` times: on a
    # shared machine the speed drifts over minutes, so the ratio is the median of pairs measured back to back.
    cmd = reproduce(dataset, command_epochs_scale)
    cmd["samples_per_s"] = len(batches) * batches.batch_size / cmd["seconds_per_epoch"]
    if "samples_per_s" in res["peers"]["tf1"]:
        pairs = []
        for i in range(command_pairs):
            run_i = cmd if i == 0 else reproduce(dataset, command_epochs_scale)
            ours = len(batches) * batches.batch_size / run_i["seconds_per_epoch"]
            tf1 = run_peer("tf1", res["peers"]["python"], arrays, ["--steps", str(len(batches))])["samples_per_s"]
            pairs.append({"samples_per_s": ours, "tf1_samples_per_s": tf1, "speedup": ours / tf1})
        cmd["pairs_with_tf1"] = pairs
        cmd["speedup_vs_tf1"] = statistics.median(p["speedup"] for p in pairs)
    keep.cleanup()
    cmd["fraction_of_matmul"] = cmd["samples_per_s"] * flops / 1e9 / big
    cmd["vs_benchmark_loop"] = cmd["samples_per_s"] / rate
    if cmd["median_later_epoch_seconds"]:  # the epochs after the first, as the benchmark's loop is measured
        cmd["later_epochs_vs_benchmark_loop"] = res["seconds_per_epoch"] / cmd["median_later_epoch_seconds"]
    res["command"] = cmd
    log(f"(f) {cmd['command']}: {cmd['seconds_per_epoch']:.3f} s per training epoch ({cmd['fraction_of_matmul']:.2f} "
        f"of the matmul limit, {cmd['vs_benchmark_loop']:.2f}x the benchmark's loop); start-up and exit "
        f"{cmd['startup_and_exit_seconds']:.1f} s, build and evaluation {cmd['build_and_evaluate_seconds']:.1f} s, "
        f"figures {cmd['figures_seconds']:.1f} s")
    if "pairs_with_tf1" in cmd:
        each = ", ".join(f"{p['speedup']:.2f}" for p in cmd["pairs_with_tf1"])
        log(f"    the command / the TF1 code, in turn: {each}x (median {cmd['speedup_vs_tf1']:.2f}x)")
    res["startup"] = start = startup()
    log(f"    aekit --help: {start['help_seconds']:.2f} s, aekit datasets: {start['datasets_seconds']:.2f} s "
        f"(python -c pass: {start['python_seconds']:.2f} s)")

    # (g) the modern recipes and the conv autoencoder
    res["recipes"] = {}
    jobs = [(name, cfg, data) for name, cfg in recipes().items()]
    # the conv preset on color: 32x32x3 patches of scikit-learn's photographs (the color benchmark's training set)
    x_train, x_test = patches()
    jobs.append((CONV_COLOR, recipes()[CONV_PRESET], from_arrays("photo-patches", x_train, None, x_test, None, seed=0)))
    for name, cfg, images in jobs:
        r = res["recipes"][name] = measure(cfg, images, recipe_images, big)
        log(f"(g) {name}: {r['samples_per_s']:,.0f} samples/s, {r['gflops']:.1f} GFLOP/s, "
            f"{r['fraction_of_matmul']:.2f} of the matmul limit")
    res["modern_fraction_of_matmul"] = res["recipes"]["modern-stacked"]["fraction_of_matmul"]
    # The bf16 recipes against the bf16 limit too: on a CPU with AMX a bf16 matmul is several times an fp32 one.
    res["matmul_gflops_bf16"] = bf16 = matmul_gflops(2048, 2048, 2048, "bfloat16")
    for m in res["recipes"].values():
        if m.get("precision") == "bf16":
            m["fraction_of_bf16_matmul"] = m["gflops"] / bf16
    log(f"    bf16 matmul 2048^3: {bf16:.1f} GFLOP/s; modern-stacked at "
        f"{res['recipes']['modern-stacked'].get('fraction_of_bf16_matmul', float('nan')):.2f} of it")
    res["time_to_quality"] = time_to_quality(data, 32, quality_epochs, log=log)
    return res


def to_markdown(r: dict) -> str:
    rows = [
        ["matmul 2048x2048x2048 (machine limit)", "GFLOP/s", r["matmul_gflops"]],
        *[[f"matmul {k} (model shape)", "GFLOP/s", v] for k, v in r["matmul_gflops_model_shapes"].items()],
        *([["the seed step's matmuls alone (the ceiling of any loop)", "fraction of matmul limit",
            r["seed_step_matmuls_fraction_of_matmul"]]] if "seed_step_matmuls_fraction_of_matmul" in r else []),
        *([["the seed step's matmuls + its elementwise work at PyTorch kernels' best", "fraction of matmul limit",
            r["seed_step_floor"]["eager_fraction_of_matmul"]],
           ["the seed step's matmuls + its elementwise bytes moved once at the measured bandwidth",
            "fraction of matmul limit", r["seed_step_floor"]["one_pass_fraction_of_matmul"]]]
          if "seed_step_floor" in r else []),
        *([["the seed step's matmuls + the TF1-RMSProp update at its best, nothing else", "fraction of matmul limit",
            matmuls_and_update(r)]] if "seed_step" in r and "seed_step_matmuls_fraction_of_matmul" in r else []),
        ["aekit, seed stacked 784-256-128-256-784", "samples/s", r["aekit_samples_per_s"]],
        ["aekit, seed stacked", "GFLOP/s", r["aekit_gflops"]],
        ["aekit, seed stacked", "fraction of matmul limit", r["gflops_fraction_of_matmul"]],
        ["aekit, seed stacked", "seconds per 55k-image epoch", r["seconds_per_epoch"]],
        ["reference loop (DataLoader + torch RMSprop)", "samples/s", r["reference_samples_per_s"]],
        ["aekit / reference", "speedup", r["speedup_vs_reference"]],
    ]
    for name, what in (("tf1", "the tutorial's TF1 code (tf.compat.v1, feed_dict)"), ("keras", "Keras 3 model.fit")):
        peer = r.get("peers", {}).get(name)
        if peer is None:
            continue
        if "skipped" in peer:
            rows.append([what, "skipped", peer["skipped"]])
        else:
            rows += [[what, "samples/s", peer["samples_per_s"]],
                     [f"aekit / {name} (once each, one after the other on a shared machine; the command run in turn "
                      "with the TF1 code below is the measure)", "speedup", r[f"speedup_vs_{name}"]]]
    if "seed_step" in r:
        p = r["seed_step"]
        rows += [[f"a seed step: {what}", "fraction of the step's seconds", p[key] / p["step_seconds"]] for what, key in
                 (("matmuls alone", "matmul_seconds"), ("forward + backward", "forward_backward_seconds"),
                  ("optimizer update (TF1 RMSProp)", "optimizer_seconds"))]
    if "resume_snapshot" in r:
        rows.append(["resume-state snapshot every epoch", "fraction of an epoch", r["resume_snapshot"]["cost"]])
    if "matmul_gflops_bf16" in r:
        rows.append(["bf16 matmul 2048x2048x2048", "GFLOP/s", r["matmul_gflops_bf16"]])
    rows += [
        ["aekit, seed pretrain network, pretraining", "samples/s", r["pretrain"]["pretrain_samples_per_s"]],
        ["aekit, seed pretrain network, fine-tuning", "samples/s", r["pretrain"]["finetune_samples_per_s"]],
        ["aekit encode (inference_mode, 8192 per batch)", "images/s", r["encode_images_per_s"]],
        [f"peak RSS, training on {r['peak_rss_images']} images", "MB", r["peak_rss_mb"]],
        ["peak RSS, reference loop", "MB", r["reference_peak_rss_mb"]],
    ]
    if "compiled_samples_per_s" in r:
        rows.append(["aekit + torch.compile, seed stacked", "samples/s", r["compiled_samples_per_s"]])
    if "command" in r:
        c = r["command"]
        rows += [
            [f"`{c['command']}`", "seconds per training epoch", c["seconds_per_epoch"]],
            ["the command's training epoch", "fraction of matmul limit", c["fraction_of_matmul"]],
            ["the command's training epoch / the benchmark's loop", "ratio", c["vs_benchmark_loop"]],
            *([["the command's first epoch / its later epochs (median)", "seconds",
                f"{c['first_epoch_seconds']:.3f} / {c['median_later_epoch_seconds']:.3f}"],
               ["the command's later epochs / the benchmark's loop", "ratio", c["later_epochs_vs_benchmark_loop"]]]
              if c.get("later_epochs_vs_benchmark_loop") else []),
            *([["the command's training epoch / TF1 code" + (f", median of {len(c['pairs_with_tf1'])} runs in turn (each: "
                + ", ".join(f"{p['speedup']:.2f}" for p in c["pairs_with_tf1"]) + ")" if "pairs_with_tf1" in c else ""),
                "speedup", c["speedup_vs_tf1"]]] if "speedup_vs_tf1" in c else []),
            ["the command: start-up (imports, data) and exit", "seconds", c["startup_and_exit_seconds"]],
            ["the command: build and evaluation", "seconds", c["build_and_evaluate_seconds"]],
            ["the command: figures / checkpoint", "seconds", f"{c['figures_seconds']:.2f} / {c['checkpoint_seconds']:.2f}"],
        ]
    if "startup" in r:
        st = r["startup"]
        rows += [["`aekit --help` / `aekit datasets`, fresh process (median of "
                  f"{st['repeats']})", "seconds", f"{st['help_seconds']:.2f} / {st['datasets_seconds']:.2f}"],
                 ["the bare interpreter (`python -c pass`), in turn with them", "seconds", st["python_seconds"]]]
    for name, m in r.get("recipes", {}).items():
        precision = "" if m.get("precision", "fp32") == "fp32" else f", {m['precision']} autocast"
        rows += [[f"{name} {m['architecture']} {tuple(m['hidden_sizes'])}, batch {m['batch_size']}{precision}", "samples/s",
                  m["samples_per_s"]],
                 [f"{name} ({m['training_flops_per_sample'] / 1e6:.1f} MFLOP per sample)", "fraction of matmul limit",
                  m["fraction_of_matmul"]],
                 *([[f"{name}", "fraction of the bf16 matmul limit", m["fraction_of_bf16_matmul"]]]
                   if "fraction_of_bf16_matmul" in m else [])]
    if "time_to_quality" in r:
        q = r["time_to_quality"]
        beat = "not within the epochs run" if q["seconds_to_beat_pca"] is None else (
            f"{q['seconds_to_beat_pca']:.1f} s ({q['epochs_to_beat_pca']} epochs)")
        rows.append([f"modern-stacked, code {q['code_size']}: time to beat PCA's test MSE {q['pca_test_mse']:.4f}",
                     "seconds", beat])
    caps = r["machine"].get("isa_limits")
    capped = f", vector instructions capped ({', '.join(f'{k}={v}' for k, v in caps.items())})" if caps else ""
    cpu = f"{r['machine']['cpu_model']} ({r['machine']['cpu_capability']}), " if r["machine"].get("cpu_model") else ""
    head = (f"Throughput on {r['dataset']} ({r['n_train']} training images), {cpu}{r['threads']} threads, "
            f"torch {r['machine']['torch']}{capped}\n\n")
    return head + markdown_table(["what", "unit", "value"], rows) + targets_table(r)


def matmuls_and_update(r: dict) -> float:
    """The fraction of the matmul limit a seed step would reach if it were only its matmuls (timed back to back)
    and the TF1-RMSProp update (timed alone, warm): both are in every step of the tutorial's program, so no loop
    on this machine passes it. The update's seconds are ``step_parts``'s; the matmuls' FLOPs and seconds those of
    the ceiling row, so the fraction is the ceiling's times the matmuls' share of the two."""
    matmuls = r["seed_step"]["matmul_seconds"]
    return r["seed_step_matmuls_fraction_of_matmul"] * matmuls / (matmuls + r["seed_step"]["optimizer_seconds"])


TARGETS = (  # (what, the JSON value, at least / at most, the target, the most this run allows or None)
    ("`aekit reproduce` seed stacked training epoch: fraction of the matmul limit",
     lambda r: r["command"]["fraction_of_matmul"], ">=", 0.85,
     lambda r: min(matmuls_and_update(r), r["seed_step_floor"]["one_pass_fraction_of_matmul"])),
    ("`aekit reproduce` seed stacked training epoch / the tutorial's TF1 code",
     lambda r: r["command"]["speedup_vs_tf1"], ">=", 1.2, None),
    ("modern-stacked: fraction of the matmul limit", lambda r: r["modern_fraction_of_matmul"], ">=", 0.70, None),
    ("the conv preset's training: fraction of the fp32 matmul limit",
     lambda r: r["recipes"][CONV_PRESET]["fraction_of_matmul"], ">=", 0.5, None),
    ("the conv preset's training on color 32x32x3 patches: fraction of the fp32 matmul limit",
     lambda r: r["recipes"][CONV_COLOR]["fraction_of_matmul"], ">=", 0.5, None),
    ("peak RSS training on 60,000 images (MB)", lambda r: r["peak_rss_mb"], "<=", 600.0, None),
    ("`aekit --help` (seconds)", lambda r: r["startup"]["help_seconds"], "<=", 0.5, None),
)


def targets_table(r: dict) -> str:
    """The issue's targets against this run's measurements; a target whose inputs the run lacks is left out."""
    rows = []
    for what, get, op, target, most in TARGETS:
        try:
            value = get(r)
        except KeyError:
            continue
        try:
            bound = "" if most is None else float(most(r))
        except KeyError:
            bound = ""
        held = value >= target if op == ">=" else value <= target
        beyond = bound != "" and not (bound >= target if op == ">=" else bound <= target)
        rows.append([what, f"{op} {target:g}", float(value), bound,
                     "yes" if held else "no; out of reach here" if beyond else "no"])
    head = ["target", "needs", "measured", "the most this run allows (the lower of the two floors above)", "holds"]
    return "\nTargets:\n\n" + markdown_table(head, rows) if rows else ""


def main(argv=None) -> int:
    import sys

    return script_main(sys.modules[__name__], argv)


def add_arguments(p) -> None:
    p.add_argument("--dataset", default="fashion-mnist", help="dataset to train on")
    p.add_argument("--warm-epochs", type=int, default=5, help="epochs of seed training before measuring")
    p.add_argument("--epochs", type=int, default=2, help="epochs measured")
    p.add_argument("--compile", action="store_true", help="also measure torch.compile")
    p.add_argument("--peer-python", default=None, help="interpreter with tensorflow for the peers (default: this one "
                   "if it has tensorflow, else .venv-peers/bin/python; without one the peers are skipped)")
    p.add_argument("--no-peers", action="store_true", help="do not run the TF1 and Keras peers")
    p.add_argument("--command-pairs", type=int, default=3, help="runs of the command, each in turn with the TF1 code")
    p.add_argument("--command-epochs-scale", type=float, default=0.1, help="--epochs-scale of the aekit reproduce measured")
    p.add_argument("--recipe-images", type=int, default=16384, help="training images per timed epoch of each recipe")
    p.add_argument("--quality-epochs", type=int, default=3, help="most epochs of modern-stacked while timing it to PCA")
    p.add_argument("--json", default="benchmarks/results/throughput.json", help="JSON output; the .md table goes beside it")


def run_cli(args) -> int:
    import torch

    from aekit.errors import ConfigError
    from aekit.runtime import setup

    setup(torch.device("cpu"))
    if args.warm_epochs < 0 or args.epochs < 1:
        raise ConfigError(f"--epochs {args.epochs} must be >= 1 and --warm-epochs {args.warm_epochs} >= 0")
    if args.recipe_images < 256 or args.command_epochs_scale <= 0 or args.quality_epochs < 1 or args.command_pairs < 1:
        raise ConfigError(f"--recipe-images {args.recipe_images} must be >= 256, --command-epochs-scale "
                          f"{args.command_epochs_scale} > 0, --quality-epochs {args.quality_epochs} >= 1 and "
                          f"--command-pairs {args.command_pairs} >= 1")
    result = run(args.dataset, args.warm_epochs, args.epochs, args.compile, peer_python=args.peer_python,
                 command_epochs_scale=args.command_epochs_scale, recipe_images=args.recipe_images,
                 quality_epochs=args.quality_epochs, peers=not args.no_peers, command_pairs=args.command_pairs)
    return finish(result, to_markdown(result), args.json)
