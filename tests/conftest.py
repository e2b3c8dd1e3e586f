"""Shared test settings: small thread count so parallel workers don't fight over 2 cores."""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def seeded():
    torch.manual_seed(0)
    return torch.Generator().manual_seed(0)
