"""Downstream recipes: fine-tuning and linear probing of a pretrained encoder as first-class runs
(``maeflow finetune CONFIG`` / ``maeflow linprobe CONFIG``), on the same runtime as pretraining.

    from maeflow.downstream import Downstream, load_downstream_config
    result = Downstream(load_downstream_config("configs/image/finetune_demo.yaml")).fit()

- :mod:`.config` — the config schema (``task``, ``model``, ``head``, ``data``, ``augment``, ``train``, ``run``)
- :mod:`.classifier` — :class:`Classifier` (tokenizer + encoder + pool + norm + head), loading the encoder
- :mod:`.augment` — timm RandAugment / RandomErasing / Mixup, torchaudio SpecAugment
- :mod:`.recipe` — :class:`Downstream`: the loop, evaluation, checkpoints, outputs
- :mod:`.protocol` — ``train.optimizer: protocol``: ``maeflow eval``'s linear probe as a run
"""

from maeflow.downstream.classifier import Classifier, classifier_from_checkpoint, is_classifier_checkpoint, load_encoder
from maeflow.downstream.config import DownstreamConfig, downstream_config_from_dict, load_downstream_config
from maeflow.downstream.recipe import Downstream, DownstreamResult

__all__ = [
    "Classifier",
    "Downstream",
    "DownstreamConfig",
    "DownstreamResult",
    "classifier_from_checkpoint",
    "downstream_config_from_dict",
    "is_classifier_checkpoint",
    "load_encoder",
    "load_downstream_config",
]
