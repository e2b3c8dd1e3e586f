"""What a bench entry trains: a maeflow preset (kind ``maeflow``), or a peer implementation a
plugin registers as a bench subject (the image plugin registers Hugging Face's model with
the preset's architecture).

A subject wraps one ``nn.Module`` and says how to get its loss from an input batch and the
trivial-baseline loss on the same batch, so the measuring loop never branches on the kind.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import torch
from torch import nn

import maeflow
from maeflow._errors import unknown_name_message
from maeflow.eval.baseline import baseline_losses
from maeflow.nn.blocks import set_attention_backend


class BenchSubject(Protocol):
    """What the bench measures; built as ``cls(preset, args, attention)`` from an entry.

    A registered subject class may also have ``check(model)`` (a static method raising
    ``ValueError`` when the preset, built on the meta device, cannot be its subject; run before
    anything is measured) and ``peer = True``: a peer entry runs on synthetic inputs only,
    without probes, and the maeflow entry of the same preset, arguments, batch and precision
    reports its speed and memory against it (``vs_hf``, ``vs_hf_peak_mem``).
    """

    kind: ClassVar[str]
    attention: str  # the attention path it runs, as reported
    seeded_masks: bool  # masks drawn from per-sample seeds as the trainer draws them (else its own RNG)

    @property
    def module(self) -> nn.Module: ...

    def num_tokens(self) -> int: ...

    def example_inputs(self, batch: int, generator: torch.Generator) -> torch.Tensor: ...

    def no_weight_decay(self) -> set[str]:
        """Parameter names trained without weight decay."""

    def loss(self, module: nn.Module, inputs: torch.Tensor, **kwargs: Any) -> tuple[torch.Tensor, Any]:
        """``(loss, aux)`` of one forward of ``module``; ``kwargs`` (``generator``: the mask
        generators of :func:`maeflow.runtime.mask_generators`) only when ``seeded_masks``."""

    def visible_tokens(self, aux: Any) -> int: ...

    def baselines(self, aux: Any) -> dict[str, torch.Tensor]:
        """Losses of trivial predictions on the batch and mask of ``aux``."""

    def counting_backend(self):
        """A context under which FLOPs are counted."""

    def compile(self) -> None:
        """Compile the module in place (``compile: true``), as its training would."""


class MaeflowSubject:
    """A registered maeflow preset, ``create_model(preset, **args)``.

    Its trivial baselines are the losses of constant predictions on the same batch and mask
    (:func:`maeflow.eval.baseline.trivial_baselines`), and ``baseline_pred(target, mask) -> pred`` when the model or
    its loss declares a modality-specific one.
    """

    kind = "maeflow"
    peer = False

    def __init__(self, preset: str, args: dict[str, Any], attention: str):
        self.model = maeflow.create_model(preset, **args)
        self.attention = attention
        self.seeded_masks = hasattr(self.model, "masker")  # the trainer's rule
        set_attention_backend(self.model, attention)

    @property
    def module(self) -> nn.Module:
        return self.model

    def num_tokens(self) -> int:
        return int(self.model.tokenizer.num_tokens)

    def example_inputs(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        return self.model.tokenizer.example_inputs(batch, generator=generator)

    def no_weight_decay(self) -> set[str]:
        fn = getattr(self.model, "no_weight_decay_names", None)
        return set(fn()) if fn is not None else set()

    def loss(self, module: nn.Module, inputs: torch.Tensor, **kwargs: Any) -> tuple[torch.Tensor, Any]:
        out = module(inputs, **kwargs)
        return out.loss, out

    def visible_tokens(self, aux: Any) -> int:
        return int(aux.mask_info.num_visible)

    @torch.no_grad()
    def baselines(self, aux: Any) -> dict[str, torch.Tensor]:
        """Losses of constant predictions on this batch and mask (see :func:`maeflow.eval.baseline.trivial_baselines`),
        plus the model's own ``baseline_pred(target, mask)`` when it (or its loss) has one."""
        return baseline_losses(self.model, aux.pred, aux.target, aux.mask)

    def counting_backend(self):
        """Context for FLOP counting: attention through SDPA (the kernels the counter knows),
        whatever backend the entry runs with."""
        return _Backend(self.model, "sdpa", self.attention)

    def compile(self) -> None:
        """What ``train.compile`` does: the transformer stacks under ``torch.compile``."""
        from maeflow.runtime import compile_stacks

        compile_stacks(self.model)


class _Backend:
    def __init__(self, model: nn.Module, during: str, after: str):
        self.model, self.during, self.after = model, during, after

    def __enter__(self):
        set_attention_backend(self.model, self.during)

    def __exit__(self, *exc):
        set_attention_backend(self.model, self.after)


def subject_class(kind: str) -> type:
    """The subject class of an entry ``kind``: ``"maeflow"``, or a :class:`BenchSubject` a plugin
    registered under that name (``registry.add("bench_subject", name, cls)``)."""
    if kind == MaeflowSubject.kind:
        return MaeflowSubject
    from maeflow.plugins import registry

    subjects = registry("bench_subject")
    if kind not in subjects:
        raise ValueError(unknown_name_message("bench subject", kind, [MaeflowSubject.kind, *subjects.names()]))
    return subjects.get(kind)
