"""``train.optimizer: protocol``: the linear probe of ``maeflow eval`` (:func:`maeflow.eval.linear_probe`
on frozen, un-augmented features, standardized with the training set's statistics), written out
as a classifier whose ``BatchNorm1d`` (no affine) holds those statistics, so that its files,
figure and export are those of any other ``maeflow linprobe`` run."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import torch

from maeflow.downstream.classifier import Classifier, load_encoder
from maeflow.downstream.report import confusion_figure, save_classifier
from maeflow.runtime import Precision, Strategy, resolve_device, seed_everything
from maeflow.runtime.device import set_threads

if TYPE_CHECKING:
    from maeflow.downstream.recipe import Downstream, DownstreamResult


def fit_protocol(r: Downstream) -> DownstreamResult:
    from maeflow.downstream.data import build_splits, count_classes
    from maeflow.downstream.recipe import DownstreamResult
    from maeflow.eval.features import extract_features
    from maeflow.eval.linear import linear_probe
    from maeflow.train.logger import MetricsLogger

    c, t = r.cfg, r.cfg.train
    if c.head.pool not in ("cls", "avg") or c.head.norm != "batchnorm":
        raise ValueError("train.optimizer=protocol probes the cls token or the token mean (head.pool=cls|avg) "
                         "behind a BatchNorm (head.norm=batchnorm)")  # fmt: skip
    set_threads(c.run.threads)
    device = resolve_device(c.run.device)
    r.strategy, r.device, r.precision = Strategy(device=device), device, Precision("fp32", device)
    seed_everything(c.run.seed)
    backbone, r.source = load_encoder(c.model)
    plain = c.data.model_copy(update={"train_options": {**c.data.train_options, "augment": False}})
    no_aug = c.model_copy(update={"data": plain})
    train, r.test_ds = build_splits(no_aug, backbone)
    r.num_classes = count_classes(c, train, r.test_ds)
    pool = "cls" if c.head.pool == "cls" else "mean"
    bs = c.data.batch_size
    f_train, y_train = extract_features(backbone, train, batch_size=bs, device=device, pool=pool)
    f_test, y_test = extract_features(backbone, r.test_ds, batch_size=bs, device=device, pool=pool)
    res = linear_probe(f_train, y_train, f_test, y_test, epochs=t.epochs, lr=t.lr or t.blr * bs / 256,
                       batch_size=bs, weight_decay=t.weight_decay, warmup_epochs=round(t.warmup_epochs),
                       num_classes=r.num_classes, seed=c.run.seed, return_weights=True)  # fmt: skip
    model = Classifier(backbone, r.num_classes, c.head.pool, "batchnorm").to(device)
    with torch.no_grad():
        model.head_norm.running_mean.copy_(res["mean"])
        model.head_norm.running_var.copy_(res["var"])
        model.head.weight.copy_(res["weight"].T)
        model.head.bias.copy_(res["bias"])
    ev = r.evaluate(model.eval())
    r.output_dir.mkdir(parents=True, exist_ok=True)
    (r.output_dir / "config.yaml").write_text(c.to_yaml())
    metrics = MetricsLogger(r.output_dir, tensorboard=False)
    record = {"type": "eval", "step": 0, "epoch": t.epochs, "protocol_top1": res["top1"],
              "protocol_train_top1": res["train_top1"],
              **{k: v for k, v in ev.items() if k != "confusion"}}  # fmt: skip
    metrics.write(record, 0)
    metrics.close()
    pt, st = save_classifier(model, r.output_dir)
    png = confusion_figure(ev["confusion"], r.output_dir / "confusion.png",
                           f"linear probe (eval protocol) {backbone.model_name}: top-1 {ev['top1']:.2f}%")  # fmt: skip
    summary = {"task": c.task, "source": r.source, "protocol_top1": res["top1"], "top1": ev["top1"],
               "top5": ev["top5"], "num_classes": r.num_classes, "num_test": ev["num_test"]}  # fmt: skip
    (r.output_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    steps = t.epochs * -(-len(y_train) // bs)  # the probe's SGD steps
    return DownstreamResult(r.output_dir, steps, t.epochs, top1=res["top1"], top5=ev["top5"], best_top1=res["top1"],
                            files={"classifier": pt, "safetensors": st, "confusion": png,
                                   "summary": r.output_dir / "summary.json"}, history=[record])  # fmt: skip
