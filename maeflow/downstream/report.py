"""What a downstream run reports: top-1/top-5 and a confusion matrix on the held-out split
(summed over processes), its figure, and the classifier files (maeflow format and safetensors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from maeflow.downstream.classifier import Classifier, classifier_payload


def topk_hits(logits: torch.Tensor, y: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> list[int]:
    """How many rows have their label among the ``k`` largest logits, for each ``k`` (capped at C)."""
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices  # (B, k)
    hit = top == y.view(-1, 1)
    return [int(hit[:, : min(k, logits.shape[1])].any(dim=1).sum()) for k in ks]


def labels_of(target: Any) -> torch.Tensor:
    """Class indices (B,) from int labels, or the argmax of multi-hot / soft targets (B, C)."""
    t = torch.as_tensor(target)
    return t.argmax(dim=1) if t.ndim == 2 else t.long().reshape(-1)


def confusion_figure(matrix: torch.Tensor, path: str | Path, title: str) -> Path:
    """A confusion-matrix PNG (rows: true class, columns: predicted; row-normalized colours, counts
    written in for up to 20 classes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = matrix.float()
    norm = m / m.sum(dim=1, keepdim=True).clamp_min(1)
    c = m.shape[0]
    fig, ax = plt.subplots(figsize=(min(2 + 0.45 * c, 14), min(1.6 + 0.45 * c, 13)))
    im = ax.imshow(norm.numpy(), cmap="Blues", vmin=0, vmax=1)
    if c <= 20:
        for i in range(c):
            for j in range(c):
                if m[i, j]:
                    ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")  # fmt: skip
        ax.set_xticks(range(c))
        ax.set_yticks(range(c))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def save_classifier(model: Classifier, output_dir: str | Path) -> tuple[Path, Path]:
    """``classifier.pt`` (maeflow format: rebuilds with :func:`~maeflow.downstream.classifier_from_checkpoint`,
    exports with ``maeflow convert``) and ``classifier.safetensors`` (the same state dict)."""
    from maeflow.checkpoint import write_state_dict
    from maeflow.utils.io import atomic_torch_save

    out = Path(output_dir)
    payload = classifier_payload(model)
    pt = atomic_torch_save(payload, out / "classifier.pt")
    st = write_state_dict(payload["model"], out / "classifier.safetensors")
    return pt, st
