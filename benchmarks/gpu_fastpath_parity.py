"""Loss curve of the fast path against eager fp32 on one fixed batch (GPU).

One command on the GPU machine (after ``pip install --no-deps -e .``)::

    python benchmarks/gpu_fastpath_parity.py            # ViT-B/16 MAE, batch 64, 30 steps
    python benchmarks/gpu_fastpath_parity.py --dry-run  # tiny CPU run, writes nothing

Both runs start from the same weights and train on the same batch with the same masking noise
at every step (so the curve is a deterministic function of the arithmetic):

- reference: eager, fp32 (TF32 off), ``attention='math'``, for-loop AdamW;
- fast path: what ``train.compile=true``, ``train.precision=bf16`` and ``attention='auto'`` run —
  ``torch.compile`` of encoder and decoder, bf16 autocast, the kernel ``auto`` picks, fused AdamW.

It reports both curves and the largest relative difference; bf16 keeps about 3 significant
digits, so the fast curve should stay within a few percent of the reference. Results:
``benchmarks/results/gpu_fastpath_parity_<date>.{md,json}``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import logging
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def train_curve(model, x, noise, steps, fast: bool, device) -> list[float]:
    opt = torch.optim.AdamW(model.parameters(), lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05,
                            **({"fused": True} if fast and device.type == "cuda" else {"foreach": False}))  # fmt: skip
    losses = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
            loss = model(x, noise=noise).loss
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="mae_vit_base_patch16")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--device", default="cuda")
    p.add_argument("--tolerance", type=float, default=0.05, help="largest relative loss difference accepted")
    p.add_argument("--out-dir", type=Path, default=HERE / "results")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="tiny CPU run, nothing written")
    args = p.parse_args(argv)
    if args.dry_run:
        args.preset, args.batch, args.steps, args.device, args.no_write = "mae_vit_test", 4, 3, "cpu", True
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("no CUDA device here; use --dry-run for the CPU check")
    import maeflow
    from maeflow.nn import set_attention_backend
    from maeflow.nn.attention import attention_choices

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    ref = maeflow.create_model(args.preset, attention="math").to(device).train()
    fast = copy.deepcopy(ref)
    set_attention_backend(fast, "auto")
    if not args.dry_run:  # compiling a model on a CPU takes minutes; the CPU check skips it
        fast.encoder.compile()
        fast.decoder.compile()
    g = torch.Generator().manual_seed(1)
    x = ref.tokenizer.example_inputs(args.batch, generator=g).to(device)
    noise = torch.rand(args.batch, ref.tokenizer.num_tokens, generator=g).to(device)

    ref_curve = train_curve(ref, x, noise, args.steps, False, device)
    fast_curve = train_curve(fast, x, noise, args.steps, True, device)
    rel = [abs(f - r) / abs(r) for r, f in zip(ref_curve, fast_curve, strict=True)]
    res = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "versions": {"torch": torch.__version__, "cuda": torch.version.cuda, "maeflow": maeflow.__version__},
        "config": {"preset": args.preset, "batch": args.batch, "steps": args.steps},
        "attention_choices": attention_choices(),
        "reference_fp32": ref_curve,
        "fast_bf16_compile_auto_fused": fast_curve,
        "max_relative_difference": max(rel),
        "within_tolerance": max(rel) <= args.tolerance,
        "tolerance": args.tolerance,
    }
    lines = [
        f"# Fast path vs eager fp32 loss curve ({res['date']}, {res['device']})",
        "",
        f"{args.preset}, batch {args.batch}, one fixed batch and masking noise, {args.steps} AdamW steps; "
        f"torch {torch.__version__}. Attention choices: {res['attention_choices'] or 'n/a (CPU: SDPA)'}",
        "",
        "| step | eager fp32, math attention | compile + bf16 + auto attention + fused AdamW | rel. diff |",
        "|---|---|---|---|",
    ]
    lines += [f"| {i + 1} | {r:.5f} | {f:.5f} | {d:.2%} |"
              for i, (r, f, d) in enumerate(zip(ref_curve, fast_curve, rel, strict=True))]  # fmt: skip
    lines += ["", f"**largest relative difference {max(rel):.2%} (tolerance {args.tolerance:.0%}): "
              f"{'within' if res['within_tolerance'] else 'OUTSIDE'}**", ""]  # fmt: skip
    md = "\n".join(lines)
    print(md)
    if not args.no_write:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        stem = args.out_dir / f"gpu_fastpath_parity_{res['date'][:10]}"
        stem.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
        stem.with_suffix(".md").write_text(md)
        print(f"wrote {stem}.md and {stem}.json", file=sys.stderr)
    return 0 if res["within_tolerance"] else 1


if __name__ == "__main__":
    sys.exit(main())
