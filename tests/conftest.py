"""Shared test settings: small thread count so parallel workers don't fight over 2 cores."""

import atexit
import os
import shutil
import tempfile

import pytest
import torch

# measured attention-kernel choices (maeflow.nn.autotune) go to a throw-away cache, not ~/.cache
if "MAEFLOW_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="maeflow-test-cache-")
    os.environ["MAEFLOW_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, True)

torch.set_num_threads(1)


@pytest.fixture
def seeded():
    torch.manual_seed(0)
    return torch.Generator().manual_seed(0)


_TINY_TRAIN_CONFIG = """# maeflow train {name}
model: {{name: {model}}}
data: {{name: {data}, batch_size: 16, num_workers: 0}}
train: {{epochs: 1, max_steps: {max_steps}, log_every: 1, progress: false, tensorboard: false, reconstruction: {recon}}}
run: {{output_dir: {out}}}
"""


@pytest.fixture
def write_tiny_config(tmp_path):
    """``write(name="tiny.yaml", model=..., data=..., max_steps=2, reconstruction=True) -> path``:
    a one-step-or-two ``maeflow train`` config in ``tmp_path`` whose run goes to ``tmp_path/run``
    (the CLI tests' shared starting point)."""

    def write(name="tiny.yaml", model="mae_vit_test", data="digits", max_steps=2, reconstruction=True):
        path = tmp_path / name
        path.write_text(_TINY_TRAIN_CONFIG.format(name=name, model=model, data=data, max_steps=max_steps,
                                                  recon=str(reconstruction).lower(), out=tmp_path / "run"))  # fmt: skip
        return path

    return write
