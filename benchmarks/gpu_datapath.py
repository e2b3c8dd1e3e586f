"""Image data path and attention kernels on one GPU: does JPEG → augment → train step keep up?

One command on the GPU machine (from the repository root; ``run_gpu_datapath.sh`` installs
maeflow first)::

    python benchmarks/gpu_datapath.py                 # ViT-B/16 MAE, batch 256, bf16, compile
    python benchmarks/gpu_datapath.py --dry-run       # tiny CPU run of every stage, writes nothing

Stages, each timed after warm-up (median of per-batch times, images/s):

1. ``synthetic``: the MAE training step (the trainer's own pieces: ``create_model``, AdamW from
   ``maeflow.runtime.build_optimizer`` (fused on CUDA), bf16 autocast, ``torch.compile`` of
   encoder and decoder, ``attention='auto'``) on one batch already on the device;
2. ``decode``: ``torchvision.io.decode_jpeg(list, device="cuda")`` of a batch of file bytes;
3. ``decode+augment``: plus RandomResizedCrop(0.2–1, bicubic, antialias) + flip + normalize on
   the device (:mod:`maeflow_image.gpu_data`);
4. ``end-to-end``: the trainer's own loader (``maeflow.data.build_dataloader`` over the
   ``image_folder`` dataset with ``data.device_pipeline=true``: workers read the bytes, (3) runs
   on a side stream) → (1): images/s and its ratio to (1) — the target is ≥ 0.8;
5. ``cpu-workers``: the same loader with ``data.device_pipeline=false`` (PIL decode + the same
   transforms in the workers), data only, for reference;
6. attention kernels (forward + backward) at the encoder/decoder shapes, with what ``auto`` picks.

The JPEG files are generated on the machine itself (``--num-images``, 500×375, quality 90,
photo-like content: smooth fields, edges and texture; ~43 KB each, near the reference set's
38 KB). Results: ``benchmarks/results/gpu_datapath_<date>.{md,json}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent

# attention shapes of the reference runs: (name, heads, tokens, head dim)
ATTENTION_SHAPES = [
    ("ViT-B encoder (50 tokens, 12x64)", 12, 50, 64),
    ("ViT-L encoder (50 tokens, 16x64)", 16, 50, 64),
    ("decoder (197 tokens, 16x32)", 16, 197, 32),
    ("ViT-B full sequence (197, 12x64)", 12, 197, 64),
]


# ---------------------------------------------------------------------------------------------
# data made on the machine


def photo_like(seed: int, h: int, w: int) -> np.ndarray:
    """An (h, w, 3) uint8 image with photo-like statistics: smooth colour fields, a few hard
    edges and fine texture (so JPEG sizes and decode costs resemble real photographs)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for _ in range(4):  # low-frequency colour waves
        fy, fx = rng.uniform(0.002, 0.02, 2)
        phase = rng.uniform(0, 2 * np.pi)
        img += np.sin(ys * fy * 2 * np.pi + xs * fx * 2 * np.pi + phase)[..., None] * rng.uniform(20, 50, 3)
    for _ in range(6):  # objects with hard edges
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(15, 90)
        img[(ys - cy) ** 2 + (xs - cx) ** 2 < r * r] += rng.uniform(-60, 60, 3)
    img += rng.normal(0, 4, (h, w, 3))  # texture / sensor noise
    return np.clip(img + 128, 0, 255).astype(np.uint8)


def _write_one(args) -> int:
    from PIL import Image

    path, seed, h, w, quality = args
    buf = io.BytesIO()
    Image.fromarray(photo_like(seed, h, w)).save(buf, format="JPEG", quality=quality)
    Path(path).write_bytes(buf.getvalue())
    return len(buf.getvalue())


def generate_jpegs(folder: Path, n: int, h: int, w: int, quality: int, workers: int) -> tuple[list[Path], float]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"img_{i:06d}.jpg" for i in range(n)]
    jobs = [(str(p), i, h, w, quality) for i, p in enumerate(paths)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            sizes = list(pool.map(_write_one, jobs, chunksize=16))
    else:
        sizes = [_write_one(j) for j in jobs]
    return paths, float(np.mean(sizes))


# ---------------------------------------------------------------------------------------------
# timing helpers


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn, device, warmup: int, steps: int) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def make_train_step(args, device):
    """The training step the trainer runs: model, fused AdamW, autocast, compiled stacks."""
    import maeflow
    from maeflow.runtime import build_optimizer

    overrides = {"attention": args.attention}
    if args.img_size:
        overrides["img_size"] = args.img_size
    model = maeflow.create_model(args.preset, **overrides).to(device).train()
    if args.compile:
        model.encoder.compile()
        model.decoder.compile()
    opt = build_optimizer(model, 1.5e-4, 0.05, fused=device.type == "cuda")
    use_amp = args.precision == "bf16"

    def step(x: torch.Tensor) -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss = model(x).loss
        loss.backward()
        opt.step()
        return loss.detach()

    return model, step


# ---------------------------------------------------------------------------------------------
# stages


def bench_attention(args, device) -> list[dict]:
    from maeflow.nn import kernels as K
    from maeflow.nn.attention import choose_kernel

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    rows = []
    if device.type == "cuda":
        ok, why = K.xformers_available(device.index or 0)
        kernels = (["xformers"] if ok else []) + list(K.sdpa_backends()) + ["sdpa", "math"]
    else:
        ok, why = False, "no CUDA device"
        kernels = ["sdpa", "sdpa_flash", "math"]
    for name, heads, n, dh in ATTENTION_SHAPES:
        B = args.batch if device.type == "cuda" else 2
        n = n if device.type == "cuda" else min(n, 17)
        q, k, v = (torch.randn(B, heads, n, dh, device=device, dtype=dtype, requires_grad=True) for _ in range(3))
        g = torch.randn_like(q)
        row = {"shape": name, "batch": B, "dtype": str(dtype).removeprefix("torch."), "ms": {}, "unsupported": {}}
        for kernel in kernels:

            def once(kernel=kernel, q=q, k=k, v=v, g=g):
                out = K.run_kernel(kernel, q, k, v)
                torch.autograd.grad(out, (q, k, v), g)

            try:
                row["ms"][kernel] = median_time(once, device, 3, args.attention_reps) * 1e3
            except Exception as exc:
                row["unsupported"][kernel] = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        row["auto_picks"] = choose_kernel(q, k)
        rows.append(row)
    return [{"xformers": {"loads": ok, "why": why}}] + rows


def bench_synthetic(args, device, step) -> float:
    import maeflow

    model = maeflow.create_model(args.preset, **({"img_size": args.img_size} if args.img_size else {}))
    x = model.tokenizer.example_inputs(args.batch).to(device)
    del model
    t = median_time(lambda: step(x), device, args.warmup, args.steps)
    return args.batch / t


def bench_decode(args, device, paths, img_size) -> tuple[float, float, float]:
    """Rates of decode only, decode + augment (batched matmul resampling, the CUDA default) and
    decode + augment with F.interpolate per image."""
    from maeflow_image.gpu_data import DeviceAugment, decode_images

    data = [torch.frombuffer(bytearray(p.read_bytes()), dtype=torch.uint8) for p in paths[: args.batch]]
    t_dec = median_time(lambda: decode_images(data, device), device, 2, args.data_reps)
    rates = [len(data) / t_dec]
    for method in ("matmul", "interpolate"):
        augment = DeviceAugment(img_size=img_size, method=method)
        t = median_time(lambda augment=augment: augment(decode_images(data, device)), device, 2, args.data_reps)
        rates.append(len(data) / t)
    return tuple(rates)


def trainer_loader(args, device, folder: Path, img_size: int, device_pipeline: bool):
    """The trainer's own loader (``maeflow.data.build_dataloader``, what ``Trainer``
    calls) over the ``image_folder`` dataset of the generated files, as ``maeflow train`` builds
    it: ``ShardedSampler``, per-sample seeding, ``data.num_workers`` workers, and the dataset's
    device pipeline when ``device_pipeline`` (``data.device_pipeline``) is true."""
    from maeflow.data import ShardedSampler, build_dataloader, build_dataset

    dataset = build_dataset("image_folder", root=str(folder), img_size=img_size, verify=False)
    sampler = ShardedSampler(len(dataset), args.batch, seed=0)
    loader = build_dataloader(dataset, args.batch, sampler=sampler, drop_last=True, seed=0, num_workers=args.workers,
                              device=device, device_pipeline=device_pipeline)  # fmt: skip
    return sampler, loader


def bench_end_to_end(args, device, folder, step, img_size) -> float:
    sampler, loader = trainer_loader(args, device, folder, img_size, device_pipeline=True)
    needed = args.warmup + args.steps
    seen, t0, batches, epoch = 0, None, 0, 0
    while batches < needed:
        sampler.set_epoch(epoch)
        epoch += 1
        for x, _labels, _positions, _mask_seeds in loader:
            step(x)
            batches += 1
            if batches == args.warmup:
                sync(device)
                t0 = time.perf_counter()
            elif batches > args.warmup:
                seen += x.shape[0]
            if batches >= needed:
                break
    sync(device)
    return seen / (time.perf_counter() - t0)


def bench_cpu_workers(args, device, folder, img_size) -> float:
    _, loader = trainer_loader(args, device, folder, img_size, device_pipeline=False)
    it, n, t0 = iter(loader), 0, None
    for i in range(min(len(loader), args.warmup // 2 + args.steps)):
        x = next(it)[0]  # (inputs, labels, positions, mask seeds)
        if i == args.warmup // 2 - 1 or (t0 is None and args.warmup // 2 == 0):
            t0 = time.perf_counter()
            continue
        if t0 is not None:
            n += x.shape[0]
    return n / (time.perf_counter() - t0) if n else float("nan")


# ---------------------------------------------------------------------------------------------
# report


def to_markdown(res: dict) -> str:
    c = res["config"]
    lines = [
        f"# maeflow image data path and attention kernels ({res['date']})",
        "",
        f"- Device: {res['machine']['device']}; {res['machine']['cpus']} CPU cores; {res['machine']['cpu']}",
        f"- Versions: torch {res['versions']['torch']}, torchvision {res['versions']['torchvision']}, "
        f"CUDA {res['versions']['cuda']}",
        f"- Model step: {c['preset']} at {c['img_size']}², batch {c['batch']}, {c['precision']}, compile "
        f"{c['compile']}, attention `{c['attention']}`, fused AdamW on CUDA; {c['warmup']} warm-up + "
        f"{c['steps']} timed steps",
        f"- JPEGs: {c['num_images']} files {c['jpeg_size']}, quality {c['quality']}, average "
        f"{res['jpeg_avg_kb']:.1f} KB, generated on this machine; {c['workers']} DataLoader workers",
        "",
        "| stage | img/s |",
        "|---|---|",
    ]
    for name, v in res["images_per_s"].items():
        lines.append(f"| {name} | {v:,.0f} |")
    lines += ["", f"**end-to-end / synthetic: {res['end_to_end_ratio']:.2f}** (target ≥ 0.80)", ""]
    att = res["attention"]
    lines += [f"Attention forward+backward (ms); xformers: {'loads' if att[0]['xformers']['loads'] else 'not used'} "
              f"({att[0]['xformers']['why']})", ""]  # fmt: skip
    kernels = sorted({k for row in att[1:] for k in row["ms"]} | {k for row in att[1:] for k in row["unsupported"]})
    lines += ["| shape | batch | " + " | ".join(kernels) + " | auto picks |",
              "|---|---|" + "---|" * len(kernels) + "---|"]  # fmt: skip
    for row in att[1:]:
        cells = [f"{row['ms'][k]:.3f}" if k in row["ms"] else "n/a" for k in kernels]
        lines.append(f"| {row['shape']} | {row['batch']} | " + " | ".join(cells) + f" | {row['auto_picks']} |")
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="mae_vit_base_patch16")
    p.add_argument("--img-size", type=int, default=None, help="image side (default: the preset's)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--attention", default="auto")
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--num-images", type=int, default=10240, help="JPEG files to generate (40 batches of 256)")
    p.add_argument("--jpeg-size", default="375x500", help="HxW of the generated files")
    p.add_argument("--quality", type=int, default=90)
    p.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1))
    p.add_argument("--data-dir", type=Path, default=None, help="where to write the JPEGs (default: a temp dir)")
    p.add_argument("--data-reps", type=int, default=10)
    p.add_argument("--attention-reps", type=int, default=20)
    p.add_argument("--device", default="cuda")
    p.add_argument("--out-dir", type=Path, default=HERE / "results")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="tiny CPU run of every stage, nothing written")
    args = p.parse_args(argv)
    if args.dry_run:
        args.device, args.preset, args.batch, args.warmup, args.steps = "cpu", "mae_vit_test", 4, 1, 2
        args.precision, args.compile, args.num_images, args.jpeg_size = "fp32", False, 16, "48x64"
        args.workers, args.data_reps, args.attention_reps, args.no_write = 0, 2, 2, True
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("no CUDA device here; use --dry-run for the CPU check")
    import torchvision

    import maeflow
    from maeflow.utils.sysinfo import cpu_model

    h, w = (int(v) for v in args.jpeg_size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="maeflow_jpegs_") as tmp:
        folder = args.data_dir or Path(tmp)
        t0 = time.perf_counter()
        paths, avg = generate_jpegs(folder, args.num_images, h, w, args.quality, max(args.workers, 1))
        print(f"generated {len(paths)} JPEGs ({avg / 1e3:.1f} KB average) in {time.perf_counter() - t0:.1f}s",
              file=sys.stderr)  # fmt: skip
        model, step = make_train_step(args, device)
        img_size = model.tokenizer.img_size[0]
        rates = {}
        print("attention kernels ...", file=sys.stderr)
        attention = bench_attention(args, device)
        print("synthetic step ...", file=sys.stderr)
        rates["synthetic data on the device (model step only)"] = bench_synthetic(args, device, step)
        print("decode ...", file=sys.stderr)
        dec, aug, aug_per_image = bench_decode(args, device, paths, img_size)
        rates["decode_jpeg on the device (decode only)"] = dec
        rates["decode + RRC + flip + normalize on the device (batched resampling)"] = aug
        rates["decode + RRC + flip + normalize on the device (F.interpolate per image)"] = aug_per_image
        print("end to end ...", file=sys.stderr)
        rates["end-to-end: the trainer's loader, data.device_pipeline=true → step"] = bench_end_to_end(
            args, device, folder, step, img_size
        )
        print("CPU workers ...", file=sys.stderr)
        cpu_name = f"CPU workers: the trainer's loader, data.device_pipeline=false ({args.workers} workers), data only"
        rates[cpu_name] = bench_cpu_workers(args, device, folder, img_size)
    names = list(rates)
    res = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "cpus": os.cpu_count(), "cpu": cpu_model(),
        },
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                     "cuda": torch.version.cuda, "maeflow": maeflow.__version__},
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()} | {"img_size": img_size},
        "jpeg_avg_kb": avg / 1e3,
        "images_per_s": rates,
        "end_to_end_ratio": rates[names[4]] / rates[names[0]],
        "attention": attention,
    }  # fmt: skip
    md = to_markdown(res)
    print(md)
    if not args.no_write:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        stem = args.out_dir / f"gpu_datapath_{res['date'][:10]}"
        stem.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
        stem.with_suffix(".md").write_text(md)
        print(f"wrote {stem}.md and {stem}.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
