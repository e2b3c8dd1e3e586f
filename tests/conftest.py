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
