"""Folder scanning and robust folder datasets (modality-agnostic: files hold a number as text)."""

import importlib
import warnings
from pathlib import Path

import pytest
import torch

from maeflow.data import FolderDataset, num_skipped, scan_folder, split_folder


def write(path: Path, text: str = "1") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load_number(path: Path) -> torch.Tensor:
    return torch.tensor([float(path.read_text())])  # ValueError for a "corrupt" file


@pytest.fixture
def classes(tmp_path):
    write(tmp_path / "zebra" / "a.num", "1")
    write(tmp_path / "apple" / "nested" / "deep" / "b.NUM", "2")  # recursive, extension case-insensitive
    write(tmp_path / "apple" / "c.num", "3")
    write(tmp_path / "apple" / "notes.txt", "x")  # other extension: ignored
    write(tmp_path / "apple" / ".hidden.num", "4")  # hidden: ignored
    write(tmp_path / ".cache" / "d.num", "5")  # hidden folder: not a class
    (tmp_path / "empty_class").mkdir()
    return tmp_path


def test_labels_from_sorted_class_folders(classes):
    index = scan_folder(classes, [".num"])
    assert index.classes == ["apple", "zebra"]  # sorted; the empty folder is not a class
    assert index.num_classes == 2
    rel = [(p.relative_to(classes).as_posix(), label) for p, label in index.samples]
    assert rel == [("apple/c.num", 0), ("apple/nested/deep/b.NUM", 0), ("zebra/a.num", 1)]


def test_scan_is_deterministic_and_filters(classes):
    assert scan_folder(classes, ["num"]).samples == scan_folder(classes, [".NUM"]).samples
    assert len(scan_folder(classes, [".num", ".txt"])) == 4
    shallow = scan_folder(classes, [".num"], recursive=False)
    assert [p.name for p, _ in shallow.samples] == ["c.num", "a.num"]


def test_unlabeled_folder(tmp_path):
    write(tmp_path / "x.num")
    write(tmp_path / "sub" / "y.num")
    index = scan_folder(tmp_path, [".num"])  # files at the top: no class folders
    assert index.classes == [] and index.num_classes is None
    assert [label for _, label in index.samples] == [-1, -1]
    assert len(scan_folder(tmp_path, [".num"], recursive=False)) == 1
    forced = scan_folder(tmp_path, [".num"], labels=True)  # top-level files ignored
    assert forced.classes == ["sub"] and len(forced) == 1


def test_missing_root_and_empty_dataset_messages(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ValueError, match=f"root does not exist: {missing}"):
        scan_folder(missing, [".num"])
    with pytest.raises(ValueError, match="root"):
        scan_folder(None, [".num"])
    with pytest.raises(ValueError, match="not a folder"):
        scan_folder(write(tmp_path / "file.num"), [".num"])
    write(tmp_path / "only" / "readme.txt")
    with pytest.raises(ValueError, match=r"empty: no \.num files"):
        scan_folder(tmp_path / "only", [".num"])
    with pytest.raises(ValueError, match="extension"):
        scan_folder(tmp_path, [])


def test_corrupt_file_skipped_and_recorded(classes):
    write(classes / "apple" / "c.num", "not a number")
    with pytest.warns(RuntimeWarning, match="c.num"):
        ds = FolderDataset(scan_folder(classes, [".num"]), load=load_number)
    assert len(ds) == 2
    assert [(Path(p).name, "ValueError" in why) for p, why in ds.skipped] == [("c.num", True)]
    assert [ds[i] for i in range(2)] == [(torch.tensor([2.0]), 0), (torch.tensor([1.0]), 1)]


def test_corrupt_file_found_late_is_replaced(classes):
    write(classes / "apple" / "c.num", "garbage")
    ds = FolderDataset(scan_folder(classes, [".num"]), load=load_number, verify=False)
    assert len(ds) == 3 and ds.skipped == []
    with pytest.warns(RuntimeWarning, match="c.num"):
        item = ds[0]
    assert item == (torch.tensor([2.0]), 0)  # the next readable file stands in
    assert len(ds.skipped) == 1 and ds[0] == item and len(ds.skipped) == 1  # recorded once
    assert ds.num_skipped == 1


@pytest.mark.parametrize("context, persistent", [("fork", False), ("spawn", True)])  # spawn once: it is slow
def test_files_found_bad_in_workers_are_counted_in_the_main_process(classes, tmp_path, monkeypatch, context,
                                                                   persistent):  # fmt: skip
    write(classes / "apple" / "c.num", "garbage")
    write(classes / "zebra" / "e.num", "also garbage")
    # spawned workers import the loader by name: give them a module they can find
    module = tmp_path / "modules" / "numbers_loader.py"
    write(module, "import torch\n\ndef load(path):\n    return torch.tensor([float(path.read_text())])\n")
    monkeypatch.syspath_prepend(str(module.parent))
    loader_module = importlib.import_module("numbers_loader")
    ds = FolderDataset(scan_folder(classes, [".num"]), load=loader_module.load, verify=False)
    assert (len(ds), ds.num_skipped, num_skipped(ds)) == (4, 0, 0)
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2, multiprocessing_context=context,
                                         persistent_workers=persistent)  # fmt: skip
    for _ in range(2):  # fork: fresh workers each epoch; the bad files are counted once, not re-read
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the workers' own warnings
            values = sorted(float(x) for x, _ in loader)
        assert len(values) == 4 and set(values) <= {1.0, 2.0}  # readable files stand in for the bad ones
    assert ds.skipped == [] and ds.num_skipped == 2 and num_skipped(ds) == 2  # seen by workers only
    good = next(p for p, _ in ds.samples if p.name == "b.NUM")
    with pytest.warns(RuntimeWarning, match="b.NUM"):
        ds.mark_bad(good, "undecodable on the device")
    assert ds.num_skipped == 3 and len(ds.skipped) == 1
    ds.mark_bad(str(good), "again")  # the same file: counted once
    assert ds.num_skipped == 3 and len(ds.skipped) == 1


def test_num_skipped_of_other_datasets():
    class Generated:
        skipped = [("x", "bad")]

    assert num_skipped(Generated()) == 1 and num_skipped(object()) is None


def test_strict_raises_naming_the_file(classes):
    bad = write(classes / "zebra" / "a.num", "garbage")
    with pytest.raises(ValueError, match=f"cannot read {bad}"):
        FolderDataset(scan_folder(classes, [".num"]), load=load_number, strict=True)
    lazy = FolderDataset(scan_folder(classes, [".num"]), load=load_number, strict=True, verify=False)
    with pytest.raises(ValueError, match="a.num"):
        lazy[2]


def test_cheap_check_and_transform(classes):
    checked = []
    ds = FolderDataset(scan_folder(classes, [".num"]), load=load_number, check=checked.append,
                       transform=lambda t: t * 10)  # fmt: skip
    assert len(checked) == 3 and ds[1][0].item() == 20.0
    assert ds.targets == [0, 0, 1]


def test_all_files_unreadable(tmp_path):
    write(tmp_path / "a.num", "x")
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="none of the 1 files"):
        FolderDataset(scan_folder(tmp_path, [".num"]), load=load_number)


def test_split_folder(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    assert split_folder(tmp_path, "train") == tmp_path / "train"
    assert split_folder(tmp_path, "test", aliases=("val",)) == tmp_path / "val"
    assert split_folder(tmp_path / "train", "test") == tmp_path / "train"
    with pytest.raises(ValueError, match="does not exist"):
        split_folder(tmp_path / "missing", "train")


def test_plain_iteration_ends(classes):
    ds = FolderDataset(scan_folder(classes, [".num"]), load=load_number)
    assert [label for _, label in ds] == [0, 0, 1]  # __getitem__ raises IndexError past the end
    assert ds[-1] == ds[2]
    with pytest.raises(IndexError):
        ds[3]
