"""Static-clip control: does a video MAE learn as much as an image MAE on the same photos?

Clips repeat one real 32×32 RGB crop (scikit-learn's two sample photos, shipped offline) for 8
frames. ``videomae_vit_test`` (tubelets 2×8×8, tube masking 0.75) and ``mae_vit_test`` (8×8
patches, random masking 0.75) of the same widths (96 wide × 4 blocks, decoder 32 × 1) train on
the same crops with AdamW 1e-3, batch 64, for each target normalizer:

- ``patch_norm``: image MAE's, over all p·p·C (video: t·p·p·C) values of a token,
  ``(x − mean) / sqrt(var + 1e-6)``;
- ``channel_patch_norm``: VideoMAE's, per token and per channel, ``(x − mean) / (std + 1e-6)``;
- ``channel_patch_norm_sqrt``: the same with image MAE's eps placement (checks that the eps
  placement is not what matters);
- ``channel_patch_norm_eps0.1``: per channel with a std floor of 0.1 (ImageNet-normalized
  units), so that nearly flat channels no longer have their JPEG noise blown up to unit
  variance (checks flat-channel noise amplification).

Each row reports the training loss (mean of the first / last 20 steps) and, on 512 held-out
crops with a fixed mask, the model's loss next to two trivial baselines in the same target
space: predicting zero (the token's own mean), and predicting each masked token as the mean
normalized target of its visible spatial 8-neighbours. For patch_norm rows the loss is split
exactly into two orthogonal parts: each channel's offset within the token (its "colour share"
of the target variance is what per-channel normalization removes) and the structure within
each channel; ``residual/variance`` says how much of each part the model leaves unexplained
(1 = none of it learned). The crop statistics count tokens with a nearly flat channel.

    PYTHONPATH=$PWD:$PWD/plugins python benchmarks/video_target_control.py [--steps 400] [--out DIR] [--dry-run]

About 1 minute per row on one thread of the 2-core dev box. Records
``benchmarks/results/video_target_control_<date>.json`` (machine, torch version, commit).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from maeflow import PatchNormalizer, create_model
from maeflow_video.targets import ChannelPatchNormalizer

IMAGENET = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
WIDTHS = dict(
    img_size=32, patch_size=8, in_chans=3, embed_dim=96, depth=4, num_heads=4,
    decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2, mask_ratio=0.75,
)  # fmt: skip
FRAMES = 8
ROWS = (
    "image:patch_norm", "video:patch_norm", "image:channel_patch_norm", "video:channel_patch_norm",
    "video:channel_patch_norm_sqrt", "video:channel_patch_norm_eps0.1",
)  # fmt: skip


class ChannelPatchNormalizerSqrt(ChannelPatchNormalizer):
    """Per-channel statistics with image MAE's eps placement, ``/ sqrt(var + eps)``."""

    def _stats(self, targets):
        t = self._split(targets)
        return t.mean(dim=-2, keepdim=True), (t.var(dim=-2, keepdim=True, unbiased=True) + self.eps).sqrt()


NORMALIZERS = {
    "patch_norm": lambda: PatchNormalizer(),
    "channel_patch_norm": lambda: ChannelPatchNormalizer(channels=3),
    "channel_patch_norm_sqrt": lambda: ChannelPatchNormalizerSqrt(channels=3),
    # a std floor of 0.1 (ImageNet-normalized units, ≈ 6/255 of a [0, 1] pixel): flat channels no longer
    # have their JPEG noise blown up to unit variance
    "channel_patch_norm_eps0.1": lambda: ChannelPatchNormalizer(channels=3, eps=0.1),
}


def photos() -> list[np.ndarray]:
    from sklearn.datasets import load_sample_images

    return [np.asarray(im, dtype=np.uint8) for im in load_sample_images().images]  # (427, 640, 3) each


def crops(images: list[np.ndarray], n: int, generator: torch.Generator, size: int = 32) -> torch.Tensor:
    """``n`` random ``size``² RGB crops, ImageNet-normalized, (n, 3, size, size)."""
    out = torch.empty(n, 3, size, size)
    which = torch.randint(len(images), (n,), generator=generator)
    for i in range(n):
        im = images[int(which[i])]
        y = int(torch.randint(im.shape[0] - size + 1, (1,), generator=generator))
        x = int(torch.randint(im.shape[1] - size + 1, (1,), generator=generator))
        out[i] = torch.from_numpy(im[y : y + size, x : x + size].copy()).permute(2, 0, 1).float() / 255.0
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET)
    return (out - mean) / std


def as_input(kind: str, images: torch.Tensor) -> torch.Tensor:
    return images if kind == "image" else images.unsqueeze(2).expand(-1, -1, FRAMES, -1, -1).contiguous()


def build(kind: str, norm: str, seed: int, widths: dict | None = None):
    """``mae_vit_test`` or ``videomae_vit_test`` of ``widths``, with the ``norm`` target
    normalizer (``"default"``: the preset's own)."""
    torch.manual_seed(seed)
    widths = WIDTHS if widths is None else widths
    if kind == "image":
        model = create_model("mae_vit_test", **widths)
    else:
        model = create_model("videomae_vit_test", num_frames=FRAMES, tubelet_size=2, masker="tube", **widths)
    if norm != "default":
        model.target_normalizer = NORMALIZERS[norm]()  # the loss reads it in forward
    return model


def grid_of(model) -> tuple[int, int, int]:
    layout = getattr(model.tokenizer, "layout", None)
    if layout is not None:
        return tuple(layout)
    h, w = model.tokenizer.grid
    return 1, h, w


def neighbour_baseline(target: torch.Tensor, mask: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """Loss of predicting each masked token as the mean target of its visible 8-neighbours in
    space (same temporal slot); the mean over all visible tokens of the sample where none is."""
    B, L, P = target.shape
    T, H, W = grid
    t = target.reshape(B, T, H, W, P)
    vis = (~mask.bool()).reshape(B, T, H, W, 1).float()
    tv = (t * vis).permute(0, 1, 4, 2, 3).reshape(B * T, P, H, W)
    vv = vis.permute(0, 1, 4, 2, 3).reshape(B * T, 1, H, W)
    kernel = torch.ones(1, 1, 3, 3)
    s = torch.nn.functional.conv2d(tv, kernel.expand(P, 1, 3, 3).contiguous(), padding=1, groups=P)
    c = torch.nn.functional.conv2d(vv, kernel, padding=1)
    s = s.reshape(B, T, P, H, W).permute(0, 1, 3, 4, 2).reshape(B, L, P)
    c = c.reshape(B, T, 1, H, W).permute(0, 1, 3, 4, 2).reshape(B, L, 1)
    vis_flat = vis.reshape(B, L, 1)
    fallback = (target * vis_flat).sum(1, keepdim=True) / vis_flat.sum(1, keepdim=True).clamp_min(1)
    pred = torch.where(c > 0, s / c.clamp_min(1), fallback.expand(B, L, P))
    return masked_mse(pred, target, mask)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    per_token = (pred - target).pow(2).mean(-1)
    m = mask.float()
    return (per_token * m).sum() / m.sum()


def split_offsets(values: torch.Tensor, channels: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Token values (B, L, P) = each channel's mean within the token (the colour offsets) +
    the rest (structure within each channel); the two parts are orthogonal."""
    v = values.float().reshape(*values.shape[:-1], -1, channels)
    offsets = v.mean(-2, keepdim=True).expand_as(v)
    return offsets.reshape(values.shape), (v - offsets).reshape(values.shape)


@torch.no_grad()
def evaluate(model, kind: str, norm: str, images: torch.Tensor, seed: int = 1234) -> dict:
    model.eval()
    x = as_input(kind, images)
    g = torch.Generator().manual_seed(seed)
    out = model(x, generator=g)
    target, mask = out.target, out.mask
    row = {
        "eval_loss": float(out.loss),
        "predict_zero": float(masked_mse(torch.zeros_like(target), target, mask)),
        "neighbour_mean": float(neighbour_baseline(target, mask, grid_of(model))),
    }
    if isinstance(model.target_normalizer, PatchNormalizer):
        # the patch_norm loss splits exactly into a colour-offset part and a within-channel part
        (po, pw), (to, tw) = split_offsets(out.pred), split_offsets(target)
        zero = torch.zeros_like(target)
        row["colour_share"] = float(masked_mse(to, zero, mask)) / row["predict_zero"]
        row["offset_residual_ratio"] = float(masked_mse(po, to, mask) / masked_mse(to, zero, mask))
        row["within_residual_ratio"] = float(masked_mse(pw, tw, mask) / masked_mse(tw, zero, mask))
    model.train()
    return row


def channel_stats(images: torch.Tensor) -> dict:
    """How often one channel of an 8×8 patch is nearly flat (std < 2/255 in [0, 1] units)."""
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET)
    x = images * std + mean  # back to [0, 1]
    B = x.shape[0]
    p = x.reshape(B, 3, 4, 8, 4, 8).permute(0, 2, 4, 1, 3, 5).reshape(B * 16, 3, 64)
    s_c = p.std(-1, unbiased=True)
    s = p.reshape(B * 16, -1).std(-1, unbiased=True)
    return {
        "frac_tokens_with_a_flat_channel": float((s_c < 2 / 255).any(-1).float().mean()),
        "frac_flat_tokens": float((s < 2 / 255).float().mean()),
        "median_channel_std": float(s_c.median()),
        "median_token_std": float(s.median()),
    }


def train(kind: str, norm: str, steps: int, images_np, eval_images: torch.Tensor, seed: int = 0, batch: int = 64,
          widths: dict | None = None, figures: str = "") -> dict:  # fmt: skip
    """Train one row from scratch; its training and held-out losses and baselines. With
    ``figures`` (a folder), also its reconstruction figures in both ``denormalize`` modes."""
    model = build(kind, norm, seed, widths)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)
    g = torch.Generator().manual_seed(seed + 100)
    losses, t0 = [], time.time()
    for _ in range(steps):
        x = as_input(kind, crops(images_np, batch, g))
        loss = model(x, generator=g).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    k = min(20, steps)
    row = {
        "model": kind,
        "target_norm": norm if norm != "default" else type(model.target_normalizer).__name__,
        "loss_start": float(np.mean(losses[:k])),
        "loss_end": float(np.mean(losses[-k:])),
        "seconds": round(time.time() - t0, 1),
    }
    row.update(evaluate(model, kind, norm, eval_images))
    if figures:
        from maeflow.visualize import visualize

        noise = torch.rand(4, 16, generator=g)  # one mask for both figures (16 patches: image tokens, video slots)
        for mode in ("patch", "global"):
            path = Path(figures) / f"{kind}_{norm}_{mode}.png"
            visualize(model, as_input(kind, eval_images[:4]), path, num_samples=4, noise=noise,
                      mean=list(IMAGENET[0]), std=list(IMAGENET[1]), denormalize=mode,
                      title=f"{kind} MAE, {norm} targets, {steps} steps: held-out reconstructions",
                      **({"max_frames": 4} if kind == "video" else {}))  # fmt: skip
    return row


def commit() -> str:
    """HEAD, with ``+dirty`` when the checkout has uncommitted changes."""
    try:
        git = ["git", "-C", str(Path(__file__).resolve().parent)]
        sha = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except Exception:  # noqa: BLE001 - not a checkout
        return "unknown"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", default=",".join(ROWS), help="model:target_norm pairs, comma-separated")
    ap.add_argument("--out", default="benchmarks/results", help="folder for the JSON record ('' for none)")
    ap.add_argument("--tag", default="", help="suffix of the record's file name")
    ap.add_argument("--figures", default="", help="folder for each row's reconstruction figures (both modes)")
    ap.add_argument("--dry-run", action="store_true", help="3 steps per row, 32 held-out crops, writes nothing")
    args = ap.parse_args(argv)
    if args.dry_run:
        args.steps, args.out = 3, ""
    torch.set_num_threads(1)
    revision = commit()  # the code the rows ran with
    images_np = photos()
    eval_images = crops(images_np, 32 if args.dry_run else 512, torch.Generator().manual_seed(999))
    rows = []
    for spec in args.rows.split(","):
        kind, norm = spec.split(":")
        rows.append(train(kind, norm, args.steps, images_np, eval_images, seed=args.seed, figures=args.figures))
        r = rows[-1]
        print(
            f"{kind:5s} {norm:24s} train {r['loss_start']:.3f} -> {r['loss_end']:.3f} | held-out {r['eval_loss']:.3f}"
            f"  zero {r['predict_zero']:.3f}  neighbours {r['neighbour_mean']:.3f}"
            + (f"  | colour share {r['colour_share']:.2f}, residual/variance: colour"
               f" {r['offset_residual_ratio']:.2f} within-channel {r['within_residual_ratio']:.2f}"
               if "colour_share" in r else "")
            + f"  ({r['seconds']} s)",
            flush=True,
        )  # fmt: skip
    stats = channel_stats(eval_images)
    print("eval crops:", json.dumps(stats))
    record = {
        "benchmark": "video_target_control",
        "date": datetime.date.today().isoformat(),
        "commit": revision,
        "torch": torch.__version__,
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "threads": 1},
        "setup": {
            "steps": args.steps,
            "batch": 64,
            "optimizer": "AdamW lr 1e-3 betas (0.9, 0.95) wd 0.05",
            "frames": FRAMES,
            "widths": WIDTHS,
            "seed": args.seed,
        },  # fmt: skip
        "rows": rows,
        "eval_crop_stats": stats,
    }
    if args.out:
        path = Path(args.out) / f"video_target_control_{record['date']}{args.tag}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1) + "\n")
        print("wrote", path)
    return record


if __name__ == "__main__":
    main()
