"""DataLoader construction and building registered datasets by name."""

import pytest
import torch
from torch.utils.data import DistributedSampler, TensorDataset

import maeflow
from maeflow import plugins
from maeflow.data import build_dataloader, build_dataset, builder_options


def dataset(n=10):
    return TensorDataset(torch.arange(n).float().unsqueeze(1), torch.arange(n))


def order(loader):
    return torch.cat([y for _, y in loader]).tolist()


def test_seeded_shuffle_repeats():
    a = order(build_dataloader(dataset(), batch_size=3, seed=5))
    assert a == order(build_dataloader(dataset(), batch_size=3, seed=5))
    assert sorted(a) == list(range(10)) and a != list(range(10))
    assert order(build_dataloader(dataset(), batch_size=3, shuffle=False)) == list(range(10))


def test_sampler_replaces_shuffle_and_defaults():
    sampler = DistributedSampler(dataset(), num_replicas=2, rank=1, shuffle=False)
    loader = build_dataloader(dataset(), batch_size=2, sampler=sampler)
    assert order(loader) == [1, 3, 5, 7, 9]
    assert loader.pin_memory == torch.cuda.is_available()
    assert len(build_dataloader(dataset(), batch_size=4, drop_last=True)) == 2


def test_workers_persist():
    loader = build_dataloader(dataset(), batch_size=5, num_workers=1, seed=0)
    assert loader.persistent_workers and loader.worker_init_fn is not None
    assert sorted(order(loader)) == list(range(10))


def test_loader_errors():
    with pytest.raises(ValueError, match="batch_size"):
        build_dataloader(dataset(), batch_size=0)
    with pytest.raises(ValueError, match="num_workers"):
        build_dataloader(dataset(), batch_size=1, num_workers=-1)
    with pytest.raises(ValueError, match="empty"):
        build_dataloader(dataset(0), batch_size=1)


class Toy:
    """A plugin with one dataset whose size option shares its name with a model setting."""

    @staticmethod
    def ramp(split="train", length=4, scale=1.0):
        n = 6 if split == "train" else 2
        return TensorDataset(torch.arange(n * length).float().view(n, length) * scale, torch.zeros(n, dtype=torch.long))

    @maeflow.hookimpl
    def maeflow_register(self, registry):
        registry.dataset("ramp", self.ramp)


@pytest.fixture
def toy_registry():
    plugins.setup(load_entrypoints=False, plugins={"toy": Toy()})
    yield
    plugins.reset()


def test_build_dataset_options(toy_registry):
    assert builder_options(Toy.ramp) == ["length", "scale"]
    assert len(build_dataset("ramp", "test")) == 2
    assert build_dataset("ramp", "train", length=3)[0][0].shape == (3,)

    class Model:
        model_args = {"length": 5, "depth": 2}  # only "length" is a dataset option

    assert build_dataset("ramp", model=Model())[0][0].shape == (5,)
    assert build_dataset("ramp", model=Model(), length=2)[0][0].shape == (2,)  # explicit wins
    with pytest.raises(ValueError, match="unknown dataset 'ramp' option 'lenght': did you mean 'length'"):
        build_dataset("ramp", lenght=3)
    with pytest.raises(ValueError, match="split must be one of train, test"):
        build_dataset("ramp", "val")
    with pytest.raises(ValueError, match="unknown dataset"):
        build_dataset("rampp")
