"""Fuzz every reader of outside data: each mutated file must load or raise aekit's own error.

Valid seed files are mutated (bit flips, byte and header edits, truncation, inserted bytes, random bytes) and
fed to the reader; anything other than a load or aekit's own error is a bug. Counts per reader go to
benchmarks/results/fuzz.json and fuzz.md, with the first examples of any other exception; peak memory
(ru_maxrss) must stay under --max-rss-mb. Not run by pytest (tests/test_fuzz.py is the quick version); exits 1
when a case raised another exception, hung, or memory grew past the limit.

    taskset -c 0 .venv/bin/python -m benchmarks fuzz --cases 100000
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import torch

import aekit
from aekit.data.catalog import load_custom
from aekit.data.idx import encode_idx, read_idx
from aekit.data.inputs import load_input
from aekit.errors import AekitError
from aekit.estimators import AutoencoderClassifier, AutoencoderTransformer
from aekit.experiments import overrides, presets, recipe
from aekit.models.stacked import AutoencoderConfig, StackedAutoencoder
from aekit.runner import RunSpec, build_configs, read_toml
from benchmarks.common import machine, markdown_table, script_main, write_report

NAME = "fuzz"

EXAMPLES = 3  # kept per reader and kind of surprise
INTERESTING = (b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00", b"\x00\x00\x01\x00")


class Hang(Exception):
    """A case ran past --case-timeout seconds."""


# ---- mutations ----

def mutate(rng: random.Random, seed: bytes, header: int = 64) -> tuple[bytes, str]:
    """``seed`` with one to four edits, or (one time in twenty) random bytes; and what was done."""
    if rng.random() < 0.05:
        return rng.randbytes(rng.randint(0, 2 * len(seed))), "random bytes"
    data, ops = bytearray(seed), []
    for _ in range(rng.randint(1, 4)):
        if not data:
            break
        op = rng.choice(("flip", "flip", "byte", "header", "header-int", "truncate", "insert"))
        i = rng.randrange(len(data))
        if op == "flip":
            data[i] ^= 1 << rng.randrange(8)
        elif op == "byte":
            data[i] = rng.randrange(256)
        elif op == "header":
            i %= min(header, len(data))
            data[i] = rng.choice((0x00, 0x01, 0x7F, 0x80, 0xFF))
        elif op == "header-int":  # a 4-byte size field set to an extreme
            i %= min(header, len(data))
            data[i:i + 4] = rng.choice(INTERESTING)
        elif op == "truncate":
            del data[i:]
        else:
            data[i:i] = rng.randbytes(rng.randint(1, 16))
        ops.append(f"{op}@{i}")
    return bytes(data), " ".join(ops)


def json_value(rng: random.Random, depth: int = 0):
    kinds = ["none", "bool", "int", "bigint", "float", "str", "list", "dict"] if depth < 2 else ["none", "int", "str"]
    kind = rng.choice(kinds)
    if kind == "list":
        return [json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == "dict":
        return {rng.choice(["a", "kind", "input_size", ""]): json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    return {"none": None, "bool": rng.random() < 0.5, "int": rng.choice([-1, 0, 1, 2, 3, 16, 784, 2**31]),
            "bigint": rng.choice([2**63, -(2**63), 10**30]), "float": rng.choice([0.5, -1.0, 1e308, float("nan"), float("inf")]),
            "str": rng.choice(["", "x", "sigmoid", "StackedAutoencoder", "AutoencoderClassifier", "\u00e9"])}[kind]


def mutate_meta(rng: random.Random, text: str) -> tuple[str, str]:
    """config.json with one to three fields (top level, config, extra, extra.params) replaced or deleted."""
    meta, ops = json.loads(text), []
    for _ in range(rng.randint(1, 3)):
        tables = [("", meta)]
        for name in ("config", "extra"):
            if isinstance(meta.get(name), dict):
                tables.append((name, meta[name]))
        if isinstance(meta.get("extra"), dict) and isinstance(meta["extra"].get("params"), dict):
            tables.append(("extra.params", meta["extra"]["params"]))
        where, table = rng.choice(tables)
        key = rng.choice(sorted(table) + ["zz"]) if table else "zz"
        if rng.random() < 0.3 and key in table:
            del table[key]
            ops.append(f"del {where}.{key}")
        else:
            table[key] = json_value(rng)
            ops.append(f"set {where}.{key}={table[key]!r}"[:80])
    return json.dumps(meta), "; ".join(ops)


# ---- seeds ----

def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _npz(compressed: bool, **arrays) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def _png(arr, fmt: str = "PNG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def seeds(work: Path) -> dict:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    labels = (np.arange(20) % 4).astype(np.uint8)  # uint8: int64 labels can ask from_arrays for 2**62 classes
    StackedAutoencoder(AutoencoderConfig(input_size=16, hidden_sizes=(4, 2))).save(work / "model")
    x = rng.random((16, 16)).astype(np.float32)
    AutoencoderTransformer(hidden_sizes=(4, 2), max_epochs=1, random_state=0, device="cpu").fit(x).save(work / "est")
    AutoencoderClassifier(hidden_sizes=(4, 2), pretrain_epochs=1, finetune_epochs=1, random_state=0, device="cpu") \
        .fit(x, np.arange(16) % 3).save(work / "clf")
    return {
        "idx": [encode_idx(images[:3]), encode_idx(labels), encode_idx(np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)),
                encode_idx(np.arange(4, dtype=">i2"))],
        "npy": [_npy(images[:3]), _npy(np.linspace(0, 1, 32, dtype=np.float32).reshape(2, 16)), _npy(np.zeros((2, 2, 2), ">f8"))],
        "npz": [_npz(False, x_train=images, y_train=labels, x_test=images[:5], y_test=labels[:5]),
                _npz(True, x_train=images, y_train=labels, x_test=images[:5], y_test=labels[:5]),
                _npz(False, x=np.linspace(0, 1, 32).reshape(2, 16))],
        "png": [_png(images[0]), _png(np.stack([images[1]] * 3, axis=-1)), _png(images[2][:, :14])],
        "jpeg": [_png(images[0], "JPEG"), _png(np.stack([images[1]] * 3, axis=-1), "JPEG")],
        "checkpoint": [((work / d / "config.json").read_text(), (work / d / "model.safetensors").read_bytes())
                       for d in ("model", "est", "clf")],
        "toml": ['program = "stacked"\ndataset = "x.npz"\nseed = 3\nepochs_scale = 0.5\n\n[config]\n'
                 'epochs = 2\nhidden_sizes = [64, 16]\ntrain.learning_rate = 0.01\nactivation = "relu"\n',
                 'program = "pretrain"\n\n[config]\nhidden_sizes = [64, 16]\nepochs = 2\n\n'
                 '[config.finetune]\nepochs = 3\nmode = "frozen"\nlearning_rate = 0.1\n'],
    }


# ---- the readers: each takes (rng, seeds, work) and returns (description, input bytes, call) ----

def idx_raw(rng, s, work):
    data, how = mutate(rng, rng.choice(s["idx"]))
    (work / "x-idx3-ubyte").write_bytes(data)
    return how, data, lambda: read_idx(work / "x-idx3-ubyte")


def idx_gzip(rng, s, work):
    seed = rng.choice(s["idx"])
    if rng.random() < 0.5:
        content, how = mutate(rng, seed)
        data, how = gzip.compress(content, mtime=0), f"gzip of ({how})"
    else:
        data, how = mutate(rng, gzip.compress(seed, mtime=0))
    (work / "x-idx3-ubyte.gz").write_bytes(data)
    return how, data, lambda: read_idx(work / "x-idx3-ubyte.gz")


def npy_input(rng, s, work):
    data, how = mutate(rng, rng.choice(s["npy"]), header=128)
    (work / "x.npy").write_bytes(data)
    return how, data, lambda: load_input(work / "x.npy")


def _npz_case(rng, s, work):
    if rng.random() < 0.25:  # a whole archive around a damaged member
        member, how = mutate(rng, rng.choice(s["npy"]), header=128)
        with zipfile.ZipFile(work / "x.npz", "w") as z:
            z.writestr(rng.choice(["x.npy", "x_train.npy", "x", "x_test.npy"]), member)
        return f"member ({how})", member
    data, how = mutate(rng, rng.choice(s["npz"]), header=128)
    (work / "x.npz").write_bytes(data)
    return how, data


def npz_input(rng, s, work):
    how, data = _npz_case(rng, s, work)
    return how, data, lambda: load_input(work / "x.npz")


def npz_dataset(rng, s, work):
    how, data = _npz_case(rng, s, work)
    return how, data, lambda: load_custom(work / "x.npz")


def fix_png_crcs(data: bytes) -> bytes:
    """Recompute each chunk's CRC, so that a mutation reaches PIL's decoder instead of its checksum test."""
    out, i = bytearray(data), 8
    while i + 12 <= len(out):
        length = int.from_bytes(out[i:i + 4], "big")
        end = i + 8 + length
        if end + 4 > len(out):
            break
        out[end:end + 4] = zlib.crc32(out[i + 4:end]).to_bytes(4, "big")
        i = end + 4
    return bytes(out)


def png_folder(rng, s, work):
    folder = work / "png"
    folder.mkdir(exist_ok=True)
    (folder / "000.png").write_bytes(s["png"][0])
    data, how = mutate(rng, rng.choice(s["png"]))
    if rng.random() < 0.5:
        data, how = fix_png_crcs(data), f"{how}, CRCs fixed"
    (folder / "001.png").write_bytes(data)
    return how, data, lambda: load_input(folder)


def image_dataset(rng, s, work):
    """A --dataset folder of images (train/ and test/, a class subfolder each), one JPEG of it mutated."""
    folder = work / "imgds"
    for split in ("train", "test"):
        (folder / split / "a").mkdir(parents=True, exist_ok=True)
        (folder / split / "a" / "0.jpg").write_bytes(s["jpeg"][0])
    data, how = mutate(rng, rng.choice(s["jpeg"]))
    (folder / rng.choice(("train", "test")) / "a" / "1.jpg").write_bytes(data)
    return how, data, lambda: load_custom(folder)


def checkpoint_folder(rng, s, work):
    config, weights = rng.choice(s["checkpoint"])
    r = rng.random()
    if r < 0.45:
        config, how = mutate_meta(rng, config)
    elif r < 0.7:
        raw, how = mutate(rng, config.encode(), header=len(config))
        config = raw.decode("utf-8", "surrogateescape")
    else:
        weights, how = mutate(rng, weights, header=300)
        how = f"weights: {how}"
    folder = work / "ckpt"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(config, encoding="utf-8", errors="surrogateescape")
    (folder / "model.safetensors").write_bytes(weights)
    return how, config.encode("utf-8", "surrogateescape") + b"\n--\n" + weights, lambda: aekit.load(folder)


RECIPES = (presets.get_preset("stacked"), presets.get_preset("pretrain"))
# every key --set takes (the pretrain recipe's include finetune.*), and the bare phase keys (train.*'s short form)
FIELDS = sorted(set(recipe.keys(RECIPES[1])) | set(recipe.fields_of(recipe.Phase)))
OLD_KEYS = ["zz", "training_epochs", "pretrain.epochs", "stacked.learning_rate", "finetune_epochs", "finetune.zz"]
RUN_KEYS = ["program", "preset", "dataset", "data_dir", "seed", "device", "out", "epochs_scale", "code_size",
            "compile", "tensorboard", "progress"]
TOML_VALUES = ['"stacked"', '"pretrain"', '"all"', '"modern"', '"seed"', '"x"', '""', "0", "1", "-1", "3", "1e309",
               "inf", "nan", "-0.0", "0.5", "true", "false", "[64, 16]", "[0]", "[]", "[-1, 2]", "[1.5]", '["a"]',
               "9223372036854775807", "1979-05-27", "{a = 1}", "[[1]]"]


def toml_run(rng, s, work):
    if rng.random() < 0.5:
        seed = rng.choice(s["toml"])
        data, how = mutate(rng, seed.encode(), header=len(seed))
    else:
        top = [f"{rng.choice(RUN_KEYS + ['zz'])} = {rng.choice(TOML_VALUES)}" for _ in range(rng.randint(0, 3))]
        cfg = [f"{rng.choice(FIELDS + OLD_KEYS)} = {rng.choice(TOML_VALUES)}" for _ in range(rng.randint(0, 3))]
        data, how = "\n".join(top + ["[config]"] + cfg).encode(), "generated"
    (work / "run.toml").write_bytes(data)
    return how, data, lambda: build_configs(read_toml(work / "run.toml"))


SET_VALUES = ["-1", "0", "1", "2", "1e309", "nan", "inf", "-inf", "1,2,-3", "[4, 8]", "(1, 2)", "", "true", "abc",
              "0.5", "4-8", "1,,2", "[]", " 7 ", "1e-400", "9" * 30, "relu", "mlp", "onecycle", "adamw"]


def set_values(rng, s, work):
    pairs = []
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(FIELDS + OLD_KEYS + [""])
        value = rng.choice(SET_VALUES) if rng.random() < 0.8 else rng.randbytes(6).decode("latin-1")
        pairs.append(f"{key}={value}" if rng.random() < 0.95 else key)

    def apply():
        given = overrides.parse_overrides(pairs)
        for r in RECIPES:
            overrides.apply_overrides(r, {k: v for k, v in given.items() if overrides.applies(r, k)})
        build_configs(RunSpec(program="all", config=given))

    return "--set " + " --set ".join(pairs), "\0".join(pairs).encode("utf-8", "surrogateescape"), apply


READERS: dict[str, Callable] = {
    "idx (raw)": idx_raw, "idx (gzip)": idx_gzip, ".npy INPUT": npy_input, ".npz INPUT": npz_input,
    ".npz --dataset": npz_dataset, "PNG folder INPUT": png_folder, "image folder --dataset": image_dataset,
    "checkpoint": checkpoint_folder,
    "TOML run": toml_run, "--set values": set_values,
}


# ---- the run ----

def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _alarm(signum, frame):
    raise Hang()


def example(how: str, data: bytes, error: BaseException | None, note: str) -> dict:
    row = {"mutation": how, "bytes": len(data), "note": note}
    if len(data) <= 4096:
        row["input_base64"] = base64.b64encode(data).decode()
    if error is not None:
        frame = traceback.extract_tb(error.__traceback__)[-1]
        row.update(error=f"{type(error).__name__}: {str(error)[:300]}", raised_at=f"{frame.filename}:{frame.lineno}")
    return row


def run_reader(name: str, make: Callable, n: int, rng: random.Random, s: dict, work: Path, timeout: float) -> dict:
    counts = {"cases": n, "loaded": 0, "aekit_error": 0, "other": 0, "hung": 0, "warned": 0}
    others, warned = [], []
    start = time.perf_counter()
    for _ in range(n):
        how, data, call = make(rng, s, work)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                call()
                counts["loaded"] += 1
            except AekitError as e:
                counts["aekit_error"] += 1
                if "\n" in str(e):  # the CLI prints one line
                    counts["other"] += 1
                    others.append(example(how, data, e, "message has a newline")) if len(others) < EXAMPLES else None
            except Hang as e:
                counts["hung"] += 1
                if len(others) < EXAMPLES:
                    others.append(example(how, data, e, f"ran past {timeout} s"))
            except Exception as e:  # noqa: BLE001 - what the fuzzer is looking for
                counts["other"] += 1
                if len(others) < EXAMPLES:
                    others.append(example(how, data, e, "not an AekitError"))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        if caught:
            counts["warned"] += 1
            if len(warned) < EXAMPLES:
                warned.append({"mutation": how, "warning": f"{caught[0].category.__name__}: {str(caught[0].message)[:200]}"})
    counts["us_per_case"] = round(1e6 * (time.perf_counter() - start) / max(n, 1), 1)
    counts["peak_rss_mb_after"] = round(peak_rss_mb(), 1)
    counts["other_examples"], counts["warning_examples"] = others, warned
    return counts


def add_arguments(parser) -> None:
    parser.add_argument("--cases", type=int, default=100_000, help="cases in all, split evenly across the readers")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the mutations")
    parser.add_argument("--max-rss-mb", type=float, default=2048.0, help="fail when peak memory passes this")
    parser.add_argument("--case-timeout", type=float, default=10.0, help="seconds before a case counts as hung")
    parser.add_argument("--only", default=None, help="run only the readers whose name contains this")
    parser.add_argument("--json", default="benchmarks/results/fuzz.json", help="where to write the counts")


def run_cli(args) -> int:
    torch.set_num_threads(1)
    signal.signal(signal.SIGALRM, _alarm)
    readers = {k: v for k, v in READERS.items() if args.only is None or args.only in k}
    rng = random.Random(args.seed)
    results, start = {}, time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="aekit-fuzz-") as tmp:
        work = Path(tmp)
        s = seeds(work)
        rss_start = peak_rss_mb()
        for i, (name, make) in enumerate(readers.items()):
            n = args.cases // len(readers) + (i < args.cases % len(readers))
            results[name] = run_reader(name, make, n, rng, s, work, args.case_timeout)
            r = results[name]
            print(f"{name:18} {n:7,} cases: {r['loaded']:6,} loaded, {r['aekit_error']:6,} aekit errors, "
                  f"{r['other']} other, {r['hung']} hung, {r['warned']} warned; {r['us_per_case']:,.0f} us/case, "
                  f"peak RSS {r['peak_rss_mb_after']:,.0f} MB", flush=True)
    peak = peak_rss_mb()
    bad = sum(r["other"] + r["hung"] for r in results.values())
    ok = bad == 0 and peak <= args.max_rss_mb
    result = {"cases": sum(r["cases"] for r in results.values()), "seed": args.seed,
              "seconds": round(time.perf_counter() - start, 1), "peak_rss_mb": round(peak, 1),
              "rss_after_seeds_mb": round(rss_start, 1), "max_rss_mb": args.max_rss_mb, "ok": ok,
              "machine": machine(), "readers": results}
    rows = [[name, r["cases"], r["loaded"], r["aekit_error"], r["other"], r["hung"], r["warned"], r["us_per_case"]]
            for name, r in results.items()]
    markdown = ("# Fuzzing the readers of outside data\n\n"
                f"{result['cases']:,} cases (seed {args.seed}), {result['seconds']:,.0f} s on one thread; "
                f"peak RSS {peak:,.0f} MB (limit {args.max_rss_mb:,.0f} MB). Every case must load or raise "
                "aekit's own error; 'other' and 'hung' are bugs (examples in fuzz.json).\n\n"
                + markdown_table(["reader", "cases", "loaded", "aekit error", "other", "hung", "warned", "us/case"], rows))
    write_report(result, markdown, args.json)
    print(markdown)
    print(f"wrote {args.json} and {Path(args.json).with_suffix('.md')}")
    if not ok:
        print(f"fuzz: {bad} cases raised another exception or hung, or peak RSS {peak:,.0f} MB passed "
              f"{args.max_rss_mb:,.0f} MB", file=sys.stderr)
    return 0 if ok else 1


def main(argv=None) -> int:
    return script_main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
