"""The complete plugin example in docs/plugins.md runs as written."""

import dataclasses
import re
from pathlib import Path

import torch

import maeflow
from maeflow.testing import check_model

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def example(marker: str) -> str:
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(rf"<!-- example:{marker} -->\n```python\n(.*?)```", text, re.S)
    assert found, f"docs/plugins.md has no python block after <!-- example:{marker} -->"
    return found.group(1)


def test_the_signal_mae_example_builds_trains_and_conforms():
    namespace: dict = {}
    exec(compile(example("signal-mae"), str(DOCS), "exec"), namespace)  # our own docs
    small = dataclasses.replace(
        namespace["SignalMAEConfig"](), embed_dim=32, depth=2, num_heads=2,
        decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2,
    )  # fmt: skip
    model = namespace["build_signal_mae"](small)
    assert model.modality == "signal" and model.tokenizer.num_tokens == 8
    x = model.tokenizer.example_inputs(2, generator=torch.Generator().manual_seed(0))
    out = model(x, generator=torch.Generator().manual_seed(1))
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.pred.shape == (2, 8, 8)
    check_model(model)

    registered = {}

    class Recorder:
        def tokenizer(self, name, factory):
            registered[name] = factory

        def model(self, name, builder):
            registered[name] = builder

    namespace["maeflow_register"](Recorder())
    assert registered["window1d"] is namespace["WindowTokenizer"]
    tiny = registered["signal_mae"](embed_dim=32, depth=1, num_heads=2, decoder_embed_dim=16, decoder_depth=1)
    assert isinstance(tiny, maeflow.MaskedAutoencoder) and tiny.config.embed_dim == 32
