"""Image datasets: scikit-learn digits and image folders, and the image transforms."""

import numpy as np
import pytest
import torch
from PIL import Image

import maeflow
from maeflow.data import build_dataset
from maeflow_image.data import DIGITS_MEAN, DIGITS_STD, digits, image_folder, image_transforms


def test_digits_split_is_fixed_stratified_and_disjoint():
    train, test = digits("train"), digits("test")
    assert (len(train), len(test)) == (1438, 359)
    assert set(train.indices).isdisjoint(test.indices)
    assert len(set(train.indices) | set(test.indices)) == 1797
    np.testing.assert_array_equal(digits("test").indices, test.indices)  # same split every time
    assert not np.array_equal(digits("test", seed=1).indices, test.indices)
    counts = np.bincount(test.labels.numpy(), minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # about 20% of each class (174–183 per class)
    assert train.num_classes == test.num_classes == 10


@pytest.mark.parametrize(("img_size", "in_chans"), [(32, 3), (16, 1), ((24, 16), 3)])
def test_digits_shapes(img_size, in_chans):
    ds = digits("test", img_size=img_size, in_chans=in_chans)
    x, y = ds[0]
    h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
    assert x.shape == (in_chans, h, w) and x.dtype == torch.float32
    assert isinstance(y, int) and 0 <= y < 10
    if in_chans == 3:
        assert torch.equal(x[0], x[2])  # grey repeated


def test_digits_normalization_and_display_options():
    ds = digits("train", augment=False)
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    assert abs(x.mean().item()) < 0.01 and abs(x.std().item() - 1) < 0.01
    assert ds.display_options == {"mean": [DIGITS_MEAN] * 3, "std": [DIGITS_STD] * 3}
    custom = digits("test", in_chans=1, mean=0.5, std=0.25)
    raw = custom[0][0] * 0.25 + 0.5
    assert raw.min() >= -1e-6 and raw.max() <= 1 + 1e-6  # pixels in [0, 1] after undoing it


def test_digits_augmentation():
    plain = digits("train", augment=False)
    aug = digits("train")  # augment defaults to True for train
    torch.manual_seed(0)
    a = aug[3][0]
    torch.manual_seed(0)
    assert torch.equal(aug[3][0], a)  # reproducible under a seed
    assert not torch.equal(a, plain[3][0])
    assert torch.allclose(digits("train", scale=(1.0, 1.0))[3][0], plain[3][0], atol=1e-5)  # full crop: no change
    assert torch.equal(digits("test")[5][0], digits("test")[5][0])  # test: no augmentation


def test_digits_registered_and_fit_the_model():
    assert maeflow.registry("dataset").get("digits") is digits
    model = maeflow.create_model("mae_vit_test", img_size=16, in_chans=1)
    ds = build_dataset("digits", "test", model=model)
    x = torch.stack([ds[i][0] for i in range(4)])
    assert x.shape == (4, 1, 16, 16)
    assert torch.isfinite(model(x).loss)


def test_digits_bad_options():
    with pytest.raises(ValueError, match="in_chans"):
        digits(in_chans=2)
    with pytest.raises(ValueError, match="test_fraction"):
        digits(test_fraction=1.5)
    with pytest.raises(ValueError, match="interpolation"):
        digits(interpolation="nearest-ish")
    with pytest.raises(ValueError, match="mean has 2 values"):
        digits(mean=[0.1, 0.2])
    with pytest.raises(ValueError, match="split"):
        digits("validation")


def test_transforms():
    img = Image.fromarray(np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3))
    ev = image_transforms(32, train=False, mean=(0, 0, 0), std=(1, 1, 1))
    x = ev(img)
    assert x.shape == (3, 32, 32) and 0 <= x.min() and x.max() <= 1
    assert torch.equal(ev(img), x)  # deterministic
    tr = image_transforms(32, train=True)
    torch.manual_seed(0)
    assert tr(img).shape == (3, 32, 32)
    assert image_transforms((16, 24), train=True)(img).shape == (3, 16, 24)
    flip = image_transforms(48, train=True, scale=(1, 1), hflip=True, mean=(0, 0, 0), std=(1, 1, 1), crop_pct=1)
    plain = image_transforms(48, train=False, mean=(0, 0, 0), std=(1, 1, 1), crop_pct=1)
    square = Image.fromarray(np.arange(48 * 48 * 3, dtype=np.uint8).reshape(48, 48, 3))
    torch.manual_seed(0)
    outs = {tuple(flip(square)[0, 0, :2].tolist()) for _ in range(12)}
    assert len(outs) == 2  # the whole image, sometimes flipped, sometimes not
    with pytest.raises(ValueError, match="scale"):
        image_transforms(32, train=True, scale=(0.5, 0.1))
    with pytest.raises(ValueError, match="crop_pct"):
        image_transforms(32, train=False, crop_pct=0)
    assert torch.equal(plain(square), plain(square)) and plain(img).shape == (3, 48, 48)


def save_image(path, value, fmt=None, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (20, 12), value).save(path, format=fmt)


@pytest.fixture
def folder(tmp_path):
    save_image(tmp_path / "cat" / "a.jpg", (200, 0, 0))
    save_image(tmp_path / "cat" / "b.PNG", (0, 200, 0))
    save_image(tmp_path / "dog" / "x" / "c.webp", (0, 0, 200))
    save_image(tmp_path / "dog" / "d.bmp", 128, mode="L")
    save_image(tmp_path / "dog" / "e.gif", 10, mode="P")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    return tmp_path


def test_image_folder(folder):
    ds = image_folder("train", root=str(folder), img_size=16)
    assert len(ds) == 5 and ds.classes == ["cat", "dog"] and ds.num_classes == 2
    assert ds.targets == [0, 0, 1, 1, 1]
    x, y = ds[0]
    assert x.shape == (3, 16, 16) and y == 0
    grey = image_folder("test", root=folder, img_size=8, in_chans=1)
    assert grey[4][0].shape == (1, 8, 8)
    assert torch.equal(grey[2][0], grey[2][0])  # test split: no augmentation
    assert ds.display_options["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert maeflow.registry("dataset").get("image_folder") is image_folder


def test_image_folder_corrupt_file(folder):
    bad = folder / "cat" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.warns(RuntimeWarning, match="broken.jpg"):
        ds = image_folder(root=folder, img_size=16)
    assert len(ds) == 5 and [p for p, _ in ds.skipped] == [str(bad)]
    with pytest.raises(ValueError, match=f"cannot read {bad}"):
        image_folder(root=folder, img_size=16, strict=True)
    # found only when read (no up-front check): replaced by the next image and recorded
    lazy = image_folder(root=folder, img_size=16, verify=False, augment=False)
    assert len(lazy) == 6
    with pytest.warns(RuntimeWarning, match="broken.jpg"):
        x, y = lazy[1]  # sorted: a.jpg, b.PNG, broken.jpg → index 1 is b.PNG, 2 is broken
        x2, _ = lazy[2]
    assert torch.equal(x2, lazy[3][0]) and len(lazy.skipped) == 1


def test_image_folder_splits_and_errors(tmp_path):
    save_image(tmp_path / "train" / "a.png", 1, mode="L")
    save_image(tmp_path / "train" / "b.png", 2, mode="L")
    save_image(tmp_path / "val" / "c.png", 3, mode="L")
    assert len(image_folder("train", root=tmp_path, img_size=8)) == 2
    assert len(image_folder("test", root=tmp_path, img_size=8)) == 1  # val serves as test
    with pytest.raises(ValueError, match="does not exist"):
        image_folder(root=tmp_path / "missing")
    with pytest.raises(ValueError, match="root"):
        image_folder()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        image_folder(root=tmp_path / "empty")
    with pytest.raises(ValueError, match="3 channels"):
        image_folder(root=tmp_path, std=[0.2, 0.2])
