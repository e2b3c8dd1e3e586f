"""``maeflow convert``: rewrite a checkpoint in another layout.

maeflow convert run/checkpoints/last.pt --to timm -o vit_b_encoder.safetensors
maeflow convert mae_visualize_vit_base.pth --model mae_vit_base_patch16 --to hf -o hf.pt
maeflow convert runs/finetune/classifier.pt --to timm -o vit_b_classifier.safetensors   # with its head
"""

from __future__ import annotations

from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", help="a maeflow checkpoint, or a foreign one together with --model")
    parser.add_argument("--to", required=True,
                        help="target layout: maeflow, or a format of the model's modality: mae, hf, timm (image), "
                        "videomae, audiomae, pointmae, or a plugin's; others are refused")  # fmt: skip
    parser.add_argument("-o", "--output", required=True, help="output file; .safetensors or torch (.pt/.pth)")
    parser.add_argument("--model", help="preset name, for checkpoints that do not name their model")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="model overrides (with --model)")


def run(args) -> int:
    import maeflow
    from maeflow.checkpoint import export_state_dict, model_payload, read_file, write_state_dict
    from maeflow.cli.common import parse_overrides

    raw = read_file(args.checkpoint)
    from maeflow.downstream.classifier import classifier_from_checkpoint, classifier_payload, is_classifier_checkpoint

    if is_classifier_checkpoint(raw):  # maeflow finetune / linprobe output: exported with its head
        model = classifier_from_checkpoint(raw)
        payload = classifier_payload(model)
        print(f"loaded {args.checkpoint} (maeflow classifier, {model.num_classes} classes) on {model.model_name}")
        out = Path(args.output)
        if args.to == "maeflow":
            from maeflow.utils.io import atomic_torch_save

            write_state_dict(payload["model"], out) if out.suffix == ".safetensors" else atomic_torch_save(payload, out)
        else:
            write_state_dict(export_state_dict(model, args.to), out)
        print(f"wrote {out} ({args.to} layout)")
        return 0
    if args.model:
        model = maeflow.create_model(args.model, **parse_overrides(args.set))
        result = maeflow.load_checkpoint(model, raw)
    else:
        model, result = maeflow.model_from_checkpoint(raw)
    print(f"loaded {args.checkpoint} ({result.format} layout) into {model.model_name}")
    if result.missing:
        print(f"  {len(result.missing)} parameters were not in the source (left at initialization)")
    out = Path(args.output)
    if args.to == "maeflow":
        from maeflow.utils.io import atomic_torch_save

        if out.suffix == ".safetensors":
            write_state_dict(export_state_dict(model, "maeflow"), out)
        else:
            atomic_torch_save(model_payload(model), out)
    else:
        sd = export_state_dict(model, args.to)
        write_state_dict(sd, out, wrap="model" if args.to == "mae" else None)
    print(f"wrote {out} ({args.to} layout)")
    return 0
