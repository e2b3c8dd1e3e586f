"""``maeflow visualize``: reconstruction figure for a checkpoint (or a fresh model).

maeflow visualize runs/demo/checkpoints/last.pt -o recon.png
maeflow visualize mae_pretrain_vit_base.pth --model mae_vit_base_patch16 -o recon.png
maeflow visualize runs/video_demo/checkpoints/last.pt --dataset moving_digits --denormalize global
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", nargs="?", help="checkpoint to load (omit with --model for random weights)")
    parser.add_argument("-o", "--output", default="reconstruction.png", help="PNG to write")
    parser.add_argument("--model", help="preset name, for checkpoints that do not name their model")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="model overrides")
    parser.add_argument("--dataset", help="registered dataset to draw samples from (default: random inputs)")
    parser.add_argument("--data-set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="dataset options (split=NAME picks the split, default test)")
    parser.add_argument("-n", "--num-samples", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--denormalize", choices=("patch", "global"), default="patch",
        help="how normalized predictions are shown: with each patch's own mean/std, borrowed from the original "
        "(patch, the reference figures' way), or one mean/std per channel for all patches, so that a model "
        "that predicts nothing shows a flat picture (global); the caption says which",
    )  # fmt: skip


def run(args) -> int:
    import maeflow
    from maeflow.cli.common import parse_overrides
    from maeflow.visualize import visualize

    if args.checkpoint is None and not args.model:
        raise ValueError("give a checkpoint, or --model for a randomly initialized model")
    decoder_trained = True
    if args.model:
        model = maeflow.create_model(args.model, **parse_overrides(args.set))
        if args.checkpoint:
            result = maeflow.load_checkpoint(model, args.checkpoint)
            decoder_trained = not any(k.startswith("decoder.") for k in result.missing)
        else:
            decoder_trained = False
    else:
        model, result = maeflow.model_from_checkpoint(args.checkpoint, **parse_overrides(args.set))
        decoder_trained = not any(k.startswith("decoder.") for k in result.missing)
    if not decoder_trained:
        log.warning("the decoder has no trained weights here; the figure will say so instead of showing noise")
    torch.manual_seed(args.seed)
    inputs, options = None, {}
    if args.dataset:
        from maeflow.data import build_dataset

        # options the dataset shares with the model (img_size, in_chans, ...) default to the model's
        data_options = parse_overrides(args.data_set)
        split = str(data_options.pop("split", "test"))  # --data-set split=train shows training items
        ds = build_dataset(args.dataset, split, model=model, **data_options)
        inputs = torch.stack([ds[i][0] for i in range(min(args.num_samples, len(ds)))])
        options = dict(getattr(ds, "display_options", {}) or {})
    options["denormalize"] = args.denormalize
    path = visualize(
        model, inputs, args.output, num_samples=args.num_samples, decoder_trained=decoder_trained, **options
    )
    print(f"wrote {path}")
    return 0
