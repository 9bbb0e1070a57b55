"""Train one embedding network on a GPU from a packed crop file, fast: the whole training set lives on the
GPU as uint8, the "one-to-many" augmentation runs there too (``faceapp.training.torch_augment``), the
network in bfloat16 autocast and channels-last. The engine's pieces are reused, so the result is the same
model folder ``faceapp train`` writes: registered backbone and loss, the trainer's optimiser groups and
learning-rate schedule (``lr_factor``), ``save_model`` with a model card.

Made for a GPU lent for a few minutes: ``--budget S`` fits the cosine schedule to S seconds of training
after timing the first steps (so several runs can share one GPU and each still ends its schedule).

    python scripts/pack_training_crops.py --config configs/default_model.toml --out .gpu/default_crops.npz
    python scripts/train_gpu.py --pack .gpu/default_crops.npz --out out/r9w05 --backbone resnet9 \\
        --backbone-param width=0.5 --loss arcface --epochs 40 --budget 400
    python scripts/train_gpu.py ... --exclude cfp:301-400     # keep CFP people 301-400 out (validation)

Without a GPU it runs on the CPU (slowly; the tests use a tiny pack).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch

from faceapp.cli.commands.training import literal_value, split_kv
from faceapp.embedding.model_folder import ModelConfig, build_backbone, normalize_bgr, save_model
from faceapp.nn.losses import create_loss, parse_loss_params
from faceapp.training.config import AugmentConfig, TrainConfig
from faceapp.training.datasets import identity_selected, parse_identity_filter
from faceapp.training.loop import _optimizer, lr_factor
from faceapp.training.torch_augment import TorchAugmenter


def load_pack(path: str, exclude: list[str], threads: int = 16) -> tuple[np.ndarray, np.ndarray, list[str], list]:
    """Decoded crops (N, 112, 112, 3) uint8 BGR, labels 0..C-1, identity names, data card; the identities an
    ``--exclude DATASET:FILTER`` names (FILTER as a dataset's ``identities`` filter, e.g. ``cfp:301-400``) are
    dropped."""
    z = np.load(path)
    blob, offsets = z["blob"], z["offsets"]
    labels, identities = z["labels"].astype(np.int64), [str(i) for i in z["identities"]]
    card = json.loads(str(z["data_card"]))
    rules = [(dataset, *parse_identity_filter(text)) for dataset, _, text in (r.partition(":") for r in exclude)]
    drop = np.array([any(name.partition("/")[0] == dataset and identity_selected(name.partition("/")[2], ranges, names)
                         for dataset, ranges, names in rules) for name in identities], dtype=bool)
    rows = np.flatnonzero(~drop[labels])

    def decode(i: int) -> np.ndarray:
        img = cv2.imdecode(blob[offsets[i]:offsets[i + 1]], cv2.IMREAD_COLOR)
        if img is None or img.shape != (112, 112, 3):
            raise ValueError(f"{path}: crop {i} does not decode to 112x112x3")
        return img

    with ThreadPoolExecutor(threads) as pool:
        crops = np.stack(list(pool.map(decode, rows, chunksize=256)))
    used = np.unique(labels[rows])
    remap = np.full(len(identities), -1, dtype=np.int64)
    remap[used] = np.arange(used.size)
    return crops, remap[labels[rows]], [identities[i] for i in used], card


def _fit_schedule(name: str, args: argparse.Namespace, step: int, total: int, steps_per_epoch: int,
                  t_train: float, timed_from: float, timed_at: int, cuda: bool) -> int:
    """Total steps that end the schedule inside ``--budget`` at the step time measured since ``timed_at``
    (re-fitted every epoch: runs sharing a GPU slow each other down as they start and finish)."""
    if cuda:
        torch.cuda.synchronize()
    now = time.perf_counter()
    per_step = (now - timed_from) / max(1, step - timed_at)
    left = args.budget - (now - t_train)
    fit = min(args.epochs * steps_per_epoch, step + max(1, int(left / per_step)))
    if fit != total:
        print(f"[{name}] {per_step * 1000:.1f} ms/step ({args.batch / per_step:.0f} img/s): schedule fitted to "
              f"{fit} steps = {fit / steps_per_epoch:.1f} epochs", flush=True)
    return fit


def unbundle(path: str, out: str, name: str | None = None) -> int:
    """Model folder ``out`` from a ``--bundle`` file (weights back to float32; the card says they were
    carried in float16, which changes embeddings by about 1e-3 relative)."""
    bundle = torch.load(path, map_location="cpu", weights_only=True)
    model_config = ModelConfig.from_dict(dict(bundle["config"]), source=path)
    if name:
        model_config = dataclasses.replace(model_config, name=name)
    net = build_backbone(model_config, source=path)
    net.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in bundle["state_fp16"].items()})
    card = dict(bundle["card"])
    card["weights_carried_as"] = "float16 (scripts/train_gpu.py --bundle)"
    save_model(out, net.eval(), model_config, card)
    print(f"{path} -> {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pack", help="packed crops (scripts/pack_training_crops.py)")
    ap.add_argument("--out", required=True, help="model folder to write")
    ap.add_argument("--name", default=None, help="model name (default: the out folder's name)")
    ap.add_argument("--backbone", default="resnet9")
    ap.add_argument("--backbone-param", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--embedding-dim", type=int, default=128)
    ap.add_argument("--loss", default="arcface")
    ap.add_argument("--loss-param", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--epochs", type=int, default=40, help="at most this many epochs")
    ap.add_argument("--budget", type=float, default=0.0, help="seconds of training to fit the schedule to (0 = none)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--warmup-epochs", type=float, default=1.0)
    ap.add_argument("--exclude", action="append", default=[], metavar="DATASET:FILTER",
                    help="drop these people, e.g. cfp:301-400 (an identities filter)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--git-commit", default=None, help="the commit the code came from (for the card)")
    ap.add_argument("--bundle", default=None, help="also write the model as one compact float16 file (to carry "
                    "it off a lent machine); --unbundle FILE --out DIR turns it back into a model folder")
    ap.add_argument("--unbundle", default=None, metavar="FILE", help="rebuild the model folder --out from a bundle")
    args = ap.parse_args(argv)
    if args.unbundle:
        return unbundle(args.unbundle, args.out, args.name)
    if not args.pack:
        ap.error("--pack is required for training")
    t_start = time.perf_counter()
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    crops, labels, identities, data_card = load_pack(args.pack, args.exclude)
    n, num_classes = len(labels), len(identities)
    images = torch.from_numpy(crops).to(device).permute(0, 3, 1, 2).contiguous()      # uint8 BGR (N, 3, H, W)
    targets = torch.from_numpy(labels).to(device)
    del crops
    name = args.name or Path(args.out).name
    config = TrainConfig(name=name, backbone=args.backbone, embedding_dim=args.embedding_dim, loss=args.loss,
                         epochs=args.epochs, batch_size=args.batch, optimizer="sgd", lr=args.lr, momentum=0.9,
                         weight_decay=args.weight_decay, schedule="cosine", warmup_epochs=args.warmup_epochs,
                         seed=args.seed,
                         backbone_params={k: literal_value(v)
                                          for k, v in split_kv(args.backbone_param, "--backbone-param").items()},
                         loss_params=parse_loss_params(args.loss, args.loss_param))
    model_config = ModelConfig(name=name, backbone=config.backbone, embedding_dim=config.embedding_dim,
                               input_size=112, backbone_kwargs=dict(config.backbone_params))
    net = build_backbone(model_config, source="--backbone").to(device).to(memory_format=torch.channels_last)
    loss_fn = create_loss(config.loss, embedding_dim=config.embedding_dim, num_classes=num_classes,
                          **config.loss_params).to(device)
    optimizer = _optimizer(config, [net, loss_fn])
    augment = TorchAugmenter(AugmentConfig())
    gen = torch.Generator(device=device)
    gen.manual_seed(args.seed)

    steps_per_epoch = n // args.batch
    total = args.epochs * steps_per_epoch
    step, epoch, history = 0, 0, []
    timed_from, timed_at, timed_steps = None, 0, 40
    t_train = time.perf_counter()
    print(f"[{name}] {n} crops, {num_classes} identities, {steps_per_epoch} steps/epoch, setup "
          f"{t_train - t_start:.1f}s", flush=True)
    net.train()
    loss_fn.train()
    while step < total:
        order = torch.randperm(n, device=device, generator=gen)
        sums = torch.zeros(3, device=device)
        for b in range(steps_per_epoch):
            if step >= total:
                break
            idx = order[b * args.batch:(b + 1) * args.batch]
            x = augment(images[idx].float(), gen)
            x = normalize_bgr(x, model_config).contiguous(memory_format=torch.channels_last)
            y = targets[idx]
            lr = config.lr * lr_factor(config, step, total, steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss_fn.on_step(step)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cuda):
                emb = net(x)
            value = loss_fn(emb.float(), y)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], 5.0)
            optimizer.step()
            with torch.no_grad():
                sums[0] += value.detach()
                sums[1] += 1
                logits = getattr(loss_fn, "logits", None)
                if callable(logits):
                    sums[2] += (logits(emb.detach().float()).argmax(1) == y).float().mean()
            step += 1
            if step == 5:
                if cuda:
                    torch.cuda.synchronize()
                timed_from, timed_at = time.perf_counter(), step
            if args.budget > 0 and timed_from is not None and (step == 5 + timed_steps or b == steps_per_epoch - 1):
                total = _fit_schedule(name, args, step, total, steps_per_epoch, t_train, timed_from, timed_at, cuda)
                timed_from, timed_at = time.perf_counter(), step
        epoch += 1
        loss_sum, steps_done, acc_sum = sums.tolist()
        mean_loss, acc = loss_sum / max(1.0, steps_done), acc_sum / max(1.0, steps_done)
        if not math.isfinite(mean_loss):
            print(f"[{name}] loss became {mean_loss} in epoch {epoch}", file=sys.stderr)
            return 3
        history.append({"epoch": epoch, "step": step, "loss": round(mean_loss, 4), "train_acc": round(acc, 4),
                        "lr": lr, "elapsed_s": round(time.perf_counter() - t_train, 1)})
        print(f"[{name}] epoch {epoch} loss {mean_loss:.3f} acc {acc:.3f} lr {lr:.4f} "
              f"{time.perf_counter() - t_train:.0f}s", flush=True)
    if cuda:
        torch.cuda.synchronize()
    train_time = time.perf_counter() - t_train
    net.eval()
    card = {
        "trained": True,
        "data": data_card,
        "excluded_identities": args.exclude,
        "train_identities": num_classes,
        "train_images": n,
        "loss": {"name": config.loss, "params": dict(loss_fn.hparams)},
        "backbone_params": dict(config.backbone_params),
        "training": {"epochs": round(step / steps_per_epoch, 2), "steps": step, "batch_size": args.batch,
                     "sampler": "shuffle", "optimizer": "sgd", "lr": config.lr, "momentum": 0.9,
                     "weight_decay": config.weight_decay, "schedule": "cosine", "warmup_epochs": config.warmup_epochs,
                     "grad_clip": 5.0, "amp": "bfloat16" if cuda else False, "channels_last": True, "seed": args.seed,
                     "augment": {k: v for k, v in vars(AugmentConfig()).items()}, "augment_on": "gpu (torch_augment)",
                     "budget_s": args.budget, "script": "scripts/train_gpu.py", "history": history},
        "metrics": {},
        "train_time_s": round(train_time, 1),
        "images_per_s": round(step * args.batch / max(1e-9, train_time), 1),
        "device": f"cuda ({torch.cuda.get_device_name()})" if cuda else "cpu",
        "torch": str(torch.__version__),
        "git_commit": args.git_commit,
    }
    net = net.to("cpu").to(memory_format=torch.contiguous_format).float()
    save_model(args.out, net, model_config, card)
    if args.bundle:
        Path(args.bundle).parent.mkdir(parents=True, exist_ok=True)
        state = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
        torch.save({"config": model_config.to_dict(), "card": card, "state_fp16": state}, args.bundle)
    print(f"[{name}] {step} steps in {train_time:.0f}s -> {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
