"""The runtime under every loop: device, process strategy, precision, optimizer factory,
trainer-state checkpoints and the one pretraining step. Recipes (``maeflow.train``,
``maeflow.eval.finetune``, ``maeflow bench``) are short compositions of these parts.

- :func:`resolve_device`, :func:`set_threads`, :func:`seed_everything`, :func:`compile_stacks` (:mod:`.device`)
- :class:`Strategy` — single process / DDP / FSDP2: wrap, gradient sync, full state dicts,
  collectives (:mod:`.strategy`)
- :class:`Precision` — autocast, dtype, gradient scaler (:mod:`.precision`)
- :func:`build_optimizer`, :func:`param_groups`, :func:`resolve_fused`, :class:`WarmupCosine` (:mod:`.optim`)
- :mod:`.state` — trainer checkpoints: rotation, ``last.pt``, ``find_resumable``, RNG states
- :func:`pretrain_step` — micro-batches → one optimizer step (:mod:`.step`)
"""

from maeflow.runtime.device import compile_stacks, resolve_device, seed_everything, set_threads
from maeflow.runtime.optim import WarmupCosine, build_optimizer, param_groups, resolve_fused
from maeflow.runtime.precision import Precision
from maeflow.runtime.step import StepOutput, mask_generators, pretrain_step
from maeflow.runtime.strategy import DistInfo, Strategy

__all__ = [
    "DistInfo",
    "Precision",
    "StepOutput",
    "Strategy",
    "WarmupCosine",
    "build_optimizer",
    "compile_stacks",
    "mask_generators",
    "param_groups",
    "pretrain_step",
    "resolve_device",
    "resolve_fused",
    "seed_everything",
    "set_threads",
]
