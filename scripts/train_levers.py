"""The lever study behind the default model's recipe: change one thing of configs/levers_base.toml at a time,
train, and score on the validation folds (CFP folds 7-8, people 301-400, never trained on here).

    python scripts/train_levers.py --out runs/levers [--only base,data-celeba-only] [--threads 1]

Each lever is `faceapp train --config configs/levers_base.toml <overrides>` followed by `faceapp eval` on
CFP-FF and CFP-FP folds 7-8 (with and without flip test-time augmentation). Results accumulate in
OUT/results.json and OUT/results.md; a lever already in results.json is skipped, so the study can be
stopped and resumed. The test folds 9-10 are never used here.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BASE = "configs/levers_base.toml"
CELEBA = "../shared/datasets/celeba_subset"
LOWRES = "../shared/datasets/celeba_lowres::exclude=@configs/cfp_test_overlap.json"
CFP_TRAIN = "../shared/datasets/cfp::identities=001-300"

# name -> (what it tests, extra `faceapp train` options). Data levers keep the number of images seen
# (about 240k) equal by scaling the epochs.
LEVERS: dict[str, tuple[str, list[str]]] = {
    "base": ("celeba_subset + celeba_lowres + CFP 001-300, resnet9 x0.25, ArcFace s=64 m=0.5, 12 epochs", []),
    "data-celeba-only": ("fewer identities, more images each: celeba_subset alone (299 ids), 40 epochs",
                         ["--data", CELEBA, "--epochs", "40"]),
    "data-no-cfp": ("celeba_subset + celeba_lowres (no CFP training people), 15 epochs",
                    ["--data", CELEBA, "--data", LOWRES, "--epochs", "15"]),
    "loss-cosface-s32": ("CosFace s=32 m=0.35 instead of ArcFace s=64 m=0.5",
                         ["--loss", "cosface", "--loss-param", "s=32", "--loss-param", "m=0.35"]),
    "loss-arcface-s32": ("ArcFace s=32 m=0.5 (smaller scale for small data)",
                         ["--loss-param", "s=32"]),
    "width-0.375": ("wider backbone: resnet9 x0.375 (24-48-96-192 channels)", ["--backbone-param", "width=0.375"]),
    "width-0.5": ("wider backbone: resnet9 x0.5 (32-64-128-256 channels)", ["--backbone-param", "width=0.5"]),
    "blur-0.4": ("more blur augmentation (p=0.4, sigma up to 1.6) for the low-resolution set",
                 ["--augment", "blur=0.4", "--augment", "blur_sigma=1.6"]),
    "input-96": ("input resolution 96 instead of 112 (crops resized)", ["--input-size", "96"]),
    "epochs-24": ("twice the epochs (24)", ["--epochs", "24"]),
}


def run(cmd: list[str], log: Path) -> None:
    with log.open("a") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.STDOUT)


def evaluate(model: Path, protocol: str, flip: bool, log: Path) -> dict:
    cmd = [sys.executable, "-m", "faceapp", "eval", "--model", str(model), "--pairs", "../shared/datasets/cfp",
           "--format", "cfp", "--protocol", protocol, "--folds", "7,8", "--json", "--quiet"]
    if flip:
        cmd.append("--flip-tta")
    text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    with log.open("a") as out:
        out.write("$ " + " ".join(cmd) + "\n" + text + "\n")
    data = json.loads(text)
    report = data[0] if isinstance(data, list) else data
    report = report.get("reports", [report])[0] if "reports" in report else report
    return {k: report[k] for k in ("accuracy", "accuracy_std", "eer", "tar_at_far", "n_failed_pairs")}


def markdown(results: dict) -> str:
    lines = ["| lever | what | train time | img/s | FF acc | FF acc flip | FP acc | FP acc flip | FF EER | FP EER |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        ev = r["eval"]
        lines.append(f"| {name} | {r['what']} | {r['train_time_s'] / 60:.0f} min | {r['images_per_s']:.0f} | "
                     f"{ev['FF']['accuracy'] * 100:.2f} ± {ev['FF']['accuracy_std'] * 100:.2f} | "
                     f"{ev['FF-flip']['accuracy'] * 100:.2f} | "
                     f"{ev['FP']['accuracy'] * 100:.2f} ± {ev['FP']['accuracy_std'] * 100:.2f} | "
                     f"{ev['FP-flip']['accuracy'] * 100:.2f} | {ev['FF']['eer'] * 100:.2f} | {ev['FP']['eer'] * 100:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/levers"))
    parser.add_argument("--only", default="", help="comma-separated lever names (default: all)")
    parser.add_argument("--threads", default="1")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results_file = args.out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    names = [n for n in (args.only.split(",") if args.only else LEVERS) if n]
    for name in names:
        if name in results:
            continue
        what, extra = LEVERS[name]
        folder, log = args.out / name, args.out / f"{name}.log"
        start = time.monotonic()
        run([sys.executable, "-m", "faceapp", "train", "--config", BASE, "--name", f"lever-{name}",
             "--threads", args.threads, "--out", str(folder / "model"), "--run-dir", str(folder / "run"),
             "--quiet", *extra], log)
        card = json.loads((folder / "model" / "model_card.json").read_text())
        evals = {f"{p}{'-flip' if flip else ''}": evaluate(folder / "model", p, flip, log)
                 for p in ("FF", "FP") for flip in (False, True)}
        results[name] = {"what": what, "overrides": extra, "train_time_s": card["train_time_s"],
                         "images_per_s": card["images_per_s"], "wall_s": round(time.monotonic() - start),
                         "train_images": card.get("train_images"), "train_identities": card.get("train_identities"),
                         "eval": evals}
        results_file.write_text(json.dumps(results, indent=2))
        (args.out / "results.md").write_text(markdown(results))
        print(f"{name}: FF {evals['FF']['accuracy']:.4f} FP {evals['FP']['accuracy']:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
