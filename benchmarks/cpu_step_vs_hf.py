"""maeflow's MAE training step vs Hugging Face ``ViTMAEForPreTraining`` on the CPU, in one run.

One command (from the repository root)::

    .venv/bin/python benchmarks/cpu_step_vs_hf.py            # ViT-B/16, batch 8, 224², fp32

Both models get the same weights (maeflow's, exported to the Hugging Face layout), the same
synthetic batch and the same masking noise every step, and an AdamW step each (fp32). Steps of
the two are interleaved — one round is one maeflow step and one Hugging Face step, the order
alternating between rounds — so that load from other processes on a shared machine falls on
both alike. The table gives the median step time after warm-up, images/s and the ratio, plus
the median of the per-round ratios (the figure least disturbed by load changes).

Results go to ``benchmarks/results/cpu_step_vs_hf_<date>.{md,json}`` (``--out-dir`` to change,
``--no-write`` to skip). ``--dry-run`` runs a tiny model for two rounds and writes nothing.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from maeflow.utils.sysinfo import cpu_model

HERE = Path(__file__).resolve().parent


def cpu_description() -> str:
    return f"{cpu_model()}, {os.cpu_count()} logical CPUs"


def hf_twin(model, attn_implementation: str = "sdpa"):
    """A ``ViTMAEForPreTraining`` with the architecture and the weights of maeflow image ``model``
    (the image plugin's one builder of the twin), in training mode."""
    from maeflow_image.hf_twin import build_hf_vitmae

    return build_hf_vitmae(model, attn_implementation, copy_weights=True).train()


def make_step(
    model, loss_of, optimizer: str = "fused", lr: float = 1.5e-4, weight_decay: float = 0.05, precision: str = "fp32"
):
    """One training step (zero grads, forward, backward, AdamW) for ``model``; returns the loss.

    ``optimizer``: "fused" (torch's fused AdamW kernel, which also runs on the CPU; what the
    Hugging Face Trainer picks by default with torch >= 2.8) or "foreach". ``precision``:
    "fp32", or "bf16" — the forward under CPU autocast to bfloat16 (fp32 weights, gradients and
    optimizer state), which is what ``train.precision: bf16`` does and what the Hugging Face
    Trainer's ``bf16=True`` does on a CPU."""
    kind = {"fused": {"fused": True}, "foreach": {"foreach": True}}[optimizer]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=weight_decay, **kind)
    autocast = precision == "bf16"

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = loss_of(model)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


NAMES = {
    "maeflow": "maeflow (eager)",
    "maeflow_compiled": "maeflow, train.compile (encoder/decoder under torch.compile)",
    "hf": "Hugging Face ViTMAEForPreTraining (sdpa, eager)",
    "hf_eager_attention": "Hugging Face ViTMAEForPreTraining (attn_implementation='eager')",
}


def run(args) -> dict:
    import transformers

    import maeflow
    from maeflow.nn.attention import attention_choices

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    overrides = dict(norm_pix_loss=True, norm_eps=1e-6, mask_ratio=args.mask_ratio, attention=args.attention)
    if args.img_size:
        overrides["img_size"] = args.img_size
    ours = maeflow.create_model(args.preset, **overrides).train()
    hf = hf_twin(ours, "sdpa")
    n_params = sum(p.numel() for p in ours.parameters())

    g = torch.Generator().manual_seed(1)
    x = ours.tokenizer.example_inputs(args.batch, generator=g)  # (B, C, H, W)
    noise = torch.rand(args.batch, ours.tokenizer.num_tokens, generator=g)  # (B, L)

    prec = dict(precision=args.precision)
    steps = {"maeflow": make_step(ours, lambda m: m(x, noise=noise).loss, args.optimizer, **prec)}
    if args.compile:
        # what train.compile does: the transformer stacks compiled, tokenizer and masker eager
        compiled = copy.deepcopy(ours)
        compiled.encoder.compile()
        compiled.decoder.compile()
        steps["maeflow_compiled"] = make_step(compiled, lambda m: m(x, noise=noise).loss, args.optimizer, **prec)
    steps["hf"] = make_step(hf, lambda m: m(pixel_values=x, noise=noise).loss, args.optimizer, **prec)
    if args.hf_eager_attention:  # HF's own non-SDPA attention (softmax(QKᵀ)V in plain ops), for reference
        hf_eager = hf_twin(ours, "eager")
        steps["hf_eager_attention"] = make_step(
            hf_eager, lambda m: m(pixel_values=x, noise=noise).loss, args.optimizer, **prec
        )
    names = list(steps)
    wall: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    first: dict[str, dict[str, float]] = {}
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    rounds = args.warmup + args.steps
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]  # rotate who goes first
        took = {}
        for name in order:
            w0, c0 = time.perf_counter(), time.process_time()
            loss = steps[name]()
            took[name] = (time.perf_counter() - w0, time.process_time() - c0)
            first.setdefault(name, {"loss": loss, "wall_s": took[name][0]})
            if r >= args.warmup:
                wall[name].append(took[name][0])
                cpu[name].append(took[name][1])
        if not args.quiet:
            kind = "timed" if r >= args.warmup else "warm-up"
            text = ", ".join(f"{k} {took[k][0]:.2f}s wall / {took[k][1]:.2f}s cpu" for k in names)
            print(f"round {r + 1}/{rounds} ({kind}): {text}", file=sys.stderr)
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None

    def ratios(times: dict[str, list[float]], name: str) -> dict[str, float]:
        per_round = [h / m for m, h in zip(times[name], times["hf"], strict=True)]
        return {
            "ratio_of_medians": statistics.median(times["hf"]) / statistics.median(times[name]),
            "median_per_round_ratio": statistics.median(per_round),
        }

    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/cpu_step_vs_hf.py", *sys.argv[1:]]),
        "machine": {
            "cpu": cpu_description(),
            "platform": platform.platform(),
            "threads": torch.get_num_threads(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "maeflow": maeflow.__version__,
        },
        "config": {
            "preset": args.preset,
            "img_size": list(ours.tokenizer.img_size),
            "batch": args.batch,
            "mask_ratio": args.mask_ratio,
            "precision": args.precision if args.precision == "fp32" else "bf16 autocast (CPU), fp32 weights",
            "optimizer": f"AdamW ({args.optimizer}), same for all",
            "maeflow_attention": args.attention,
            "hf_attn_implementation": "sdpa",
            "warmup_rounds": args.warmup,
            "timed_rounds": args.steps,
            "params": n_params,
            "interleaving": "one step of each per round, the order rotating between rounds",
        },
        "attention_choices": attention_choices(),
        "first_step": first,
        "wall_s": wall,
        "cpu_s": cpu,
        "median_wall_s": {k: statistics.median(v) for k, v in wall.items()},
        "median_cpu_s": {k: statistics.median(v) for k, v in cpu.items()},
        "images_per_s": {k: args.batch / statistics.median(v) for k, v in wall.items()},
        "vs_hf": {k: {"wall": ratios(wall, k), "cpu": ratios(cpu, k)} for k in names if k != "hf"},
    }
    return result


def to_markdown(res: dict) -> str:
    c, m = res["config"], res["machine"]
    lines = [
        f"# maeflow vs Hugging Face ViTMAE — CPU training step ({res['date']})",
        "",
        f"- Machine: {m['cpu']}; {m['threads']} torch threads; load average (1/5/15 min) before "
        f"{fmt_load(m['loadavg_before'])}, after {fmt_load(m['loadavg_after'])} — a shared machine, so the "
        "steps are interleaved (one of each per round, order rotating) and load falls on all alike",
        f"- Command: `{res['command']}`",
        f"- Versions: torch {res['versions']['torch']}, transformers {res['versions']['transformers']}, "
        f"maeflow {res['versions']['maeflow']}, Python {res['versions']['python']}",
        f"- Config: {c['preset']} ({c['params'] / 1e6:.1f} M parameters) at {c['img_size'][0]}×{c['img_size'][1]}, "
        f"batch {c['batch']}, mask {c['mask_ratio']}, norm-pix, layer-norm eps 1e-6, {c['precision']}, "
        f"{c['optimizer']}, maeflow attention `{c['maeflow_attention']}`, HF `{c['hf_attn_implementation']}`; "
        f"{c['warmup_rounds']} warm-up + {c['timed_rounds']} timed rounds",
        "- maeflow `auto` attention picked: "
        + ("; ".join(f"{k} → {v}" for k, v in res.get("attention_choices", {}).items()) or "SDPA (small calls)"),
        "- First-step loss (same weights, batch and masking noise): "
        + ", ".join(f"{k} {v['loss']:.6f}" for k, v in res["first_step"].items()),
        "",
        "| implementation | median step, wall (s) | img/s (wall) | median step, CPU time (s) | "
        "throughput vs HF (wall, median of per-round ratios) | vs HF (CPU time) |",
        "|---|---|---|---|---|---|",
    ]
    for k in res["wall_s"]:
        vs = res["vs_hf"].get(k)
        rw = f"{vs['wall']['median_per_round_ratio']:.3f}×" if vs else "1"
        rc = f"{vs['cpu']['median_per_round_ratio']:.3f}×" if vs else "1"
        lines.append(
            f"| {NAMES[k]} | {res['median_wall_s'][k]:.3f} | {res['images_per_s'][k]:.2f} | "
            f"{res['median_cpu_s'][k]:.3f} | {rw} | {rc} |"
        )
    if "maeflow_compiled" in res["first_step"]:
        lines += [
            "",
            f"First compiled step (compilation included): {res['first_step']['maeflow_compiled']['wall_s']:.0f} s "
            "wall.",
        ]
    lines += [
        "",
        "CPU time is the process's CPU seconds per step: unlike wall time it does not grow while the "
        "process waits for a core held by another program (it still includes OpenMP spin-waiting).",
        "",
    ]
    return "\n".join(lines)


def fmt_load(load) -> str:
    return "n/a" if load is None else "/".join(f"{v:.1f}" for v in load)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="mae_vit_base_patch16")
    p.add_argument("--img-size", type=int, default=None, help="image side (default: the preset's, 224)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    p.add_argument("--steps", type=int, default=7, help="timed rounds")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--mask-ratio", type=float, default=0.75)
    p.add_argument("--attention", default="auto", help="maeflow attention backend (auto|sdpa|math)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="same for both models")
    p.add_argument("--optimizer", choices=["fused", "foreach"], default="fused", help="AdamW kernel, both models")
    p.add_argument(
        "--hf-eager-attention", action="store_true", help="add Hugging Face with attn_implementation='eager'"
    )
    p.add_argument("--compile", action="store_true", help="add maeflow with train.compile (slow to compile on a CPU)")
    p.add_argument("--out-dir", type=Path, default=HERE / "results")
    p.add_argument("--tag", default="", help="suffix for the result file names, e.g. 1thread")
    p.add_argument("--no-write", action="store_true", help="print only, write no result files")
    p.add_argument("--dry-run", action="store_true", help="tiny model, 2 rounds, nothing written")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.dry_run:
        args.preset, args.batch, args.warmup, args.steps, args.no_write = "mae_vit_test", 2, 1, 1, True
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    res = run(args)
    md = to_markdown(res)
    print(md)
    if not args.no_write:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        stem = args.out_dir / f"cpu_step_vs_hf_{res['date'][:10]}{'_' + args.tag if args.tag else ''}"
        stem.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
        stem.with_suffix(".md").write_text(md)
        print(f"wrote {stem}.md and {stem}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
