"""kNN and linear probes on synthetic features, feature extraction, evaluate_encoder."""

import pytest
import torch
from torch.utils.data import Subset, TensorDataset

import maeflow
from maeflow.eval import (
    evaluate_encoder,
    extract_features,
    knn_predict,
    knn_top1,
    linear_probe,
    random_init_like,
    standardize,
)


def clusters(n_per_class, num_classes=4, dim=16, spread=0.3, seed=0):
    """Gaussian blobs around random class centers: (N, dim) features, (N,) labels."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(num_classes, dim, generator=g) * 3
    labels = torch.arange(num_classes).repeat_interleave(n_per_class)
    feats = centers[labels] + spread * torch.randn(len(labels), dim, generator=g)
    return feats, labels


def noise(n, num_classes=5, dim=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g), torch.randint(num_classes, (n,), generator=g)


def test_knn_weighted_vote_by_hand():
    train = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8]])  # unit vectors
    labels = torch.tensor([1, 0, 0])
    query = torch.tensor([[2.0, 0.0]])  # cosine 1.0 to class 1, 0.8 and 0.6 to class 0
    assert knn_predict(train, labels, query, k=1).tolist() == [1]
    # T=0.07: exp(1/0.07) > exp(0.8/0.07) + exp(0.6/0.07) → the single close neighbour wins
    assert knn_predict(train, labels, query, k=3, temperature=0.07).tolist() == [1]
    # T=10: weights nearly equal → two votes for class 0 beat one for class 1
    assert knn_predict(train, labels, query, k=3, temperature=10.0).tolist() == [0]
    assert knn_predict(train, labels, query, k=50).tolist() == [1]  # k capped at N
    queries = torch.cat([query, -query, query])
    assert (
        knn_predict(train, labels, queries, k=1, chunk_size=1).tolist()
        == knn_predict(train, labels, queries, k=1).tolist()
    )


def test_knn_separable_and_chance():
    x_tr, y_tr = clusters(30)
    x_te, y_te = clusters(10, seed=1)
    x_te = clusters(30)[0][::3] + 0.1 * x_te  # test points near the same centers
    y_te = y_tr[::3]
    assert knn_top1(x_tr, y_tr, x_te, y_te, k=5) == 100.0
    a, b = noise(400), noise(400, seed=1)
    assert 10 < knn_top1(a[0], a[1], b[0], b[1], k=20) < 32  # 5 classes: chance is 20%


def test_linear_probe_separable_chance_and_deterministic():
    x_tr, y_tr = clusters(30)
    x_te, y_te = clusters(30)[0] + 0.05, y_tr
    result = linear_probe(x_tr, y_tr, x_te, y_te, epochs=20, batch_size=32)
    assert result["top1"] == 100.0 and result["train_top1"] == 100.0
    a, b = noise(400), noise(400, seed=1)
    chance = linear_probe(a[0], a[1], b[0], b[1], epochs=20, batch_size=64, seed=3)
    assert 10 < chance["top1"] < 32
    assert chance == linear_probe(a[0], a[1], b[0], b[1], epochs=20, batch_size=64, seed=3)


def test_standardize():
    x = torch.randn(50, 4) * torch.tensor([1.0, 10.0, 0.1, 3.0]) + 5
    tr, other = standardize(x, x[:10])
    assert torch.allclose(tr.mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(tr.std(0, unbiased=False), torch.ones(4), atol=1e-4)
    assert torch.equal(other, tr[:10])


def test_probe_errors():
    x, y = clusters(3)
    with pytest.raises(ValueError, match="k must be"):
        knn_predict(x, y, x, k=0)
    with pytest.raises(ValueError, match="labeled"):
        knn_predict(x, -torch.ones_like(y), x)
    with pytest.raises(ValueError, match="epochs"):
        linear_probe(x, y, x, y, epochs=0)
    with pytest.raises(ValueError, match="differ in length"):
        linear_probe(x, y[:-1], x, y)


class Images(TensorDataset):
    num_classes = 3


def test_extract_features_keeps_order_and_mode():
    torch.manual_seed(0)
    model = maeflow.create_model("mae_vit_test", img_size=16)
    model.train()
    x = torch.randn(7, 3, 16, 16)
    feats, labels = extract_features(model, TensorDataset(x, torch.arange(7)), batch_size=3)
    assert feats.shape == (7, 32) and labels.tolist() == list(range(7))
    assert model.training and not feats.requires_grad
    model.eval()
    assert torch.allclose(feats, model.forward_features(x), atol=1e-5)
    mean, _ = extract_features(model, TensorDataset(x, torch.arange(7)), pool="mean")
    assert torch.allclose(mean, model.encode(x)[:, 1:].mean(1), atol=1e-5)  # patch tokens, cls left out


def test_random_init_like():
    model = maeflow.create_model("mae_vit_test", img_size=16)
    state = torch.get_rng_state()
    a, b = random_init_like(model, seed=1), random_init_like(model, seed=1)
    assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched
    assert a.model_args == {"img_size": 16} and a.model_name == "mae_vit_test"
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    assert not torch.equal(a.encoder.cls_token, random_init_like(model, seed=2).encoder.cls_token)
    bare = maeflow.create_model("mae_vit_test")
    bare.model_name = None
    with pytest.raises(ValueError, match="preset name"):
        random_init_like(bare)


def test_evaluate_encoder_on_digits_subset():
    from maeflow_image.data import digits

    model = maeflow.create_model("mae_vit_test", img_size=16)
    train = Subset(digits("train", img_size=16, augment=False), range(200))
    train.num_classes = 10
    test = Subset(digits("test", img_size=16), range(100))
    result = evaluate_encoder(model, train, test, batch_size=64, knn_k=10, linear_epochs=10)
    assert {"knn_top1", "linear_top1", "num_train", "num_test", "seconds"} <= set(result)
    assert (result["num_train"], result["num_test"], result["num_classes"], result["feature_dim"]) == (200, 100, 10, 32)
    assert result["knn_top1"] > 20 and result["linear_top1"] > 20  # even random features beat 10% chance
    again = evaluate_encoder(model, train, test, batch_size=64, knn_k=10, linear_epochs=10)
    assert (again["knn_top1"], again["linear_top1"]) == (result["knn_top1"], result["linear_top1"])


def test_evaluate_encoder_needs_labels():
    model = maeflow.create_model("mae_vit_test", img_size=16)
    unlabeled = TensorDataset(torch.randn(4, 3, 16, 16), torch.full((4,), -1))
    with pytest.raises(ValueError, match="unlabeled"):
        evaluate_encoder(model, unlabeled, unlabeled)
