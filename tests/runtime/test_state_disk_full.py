"""A full disk while a checkpoint is saved: DiskFullError with the size needed, nothing earlier lost."""

import errno
import os
import shutil

import pytest
import torch

from maeflow.runtime import state as ckpt


def _state(step: int) -> dict:
    return {"format": "maeflow", "model": {"w": torch.full((1000,), float(step))}, "optimizer": {},
            "progress": {"global_step": step}}  # fmt: skip


def test_full_disk_while_updating_last_keeps_last_the_newest_complete_file(tmp_path, monkeypatch):
    ckpt.save_checkpoint(_state(1), tmp_path, 1, keep_last=3)

    def no_links(src, dst):
        raise OSError(errno.EPERM, "no hard links here")

    def full(src, dst):  # the copy that replaces the link runs out of space half-way
        with open(dst, "wb") as f:
            f.write(b"PK")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "link", no_links)
    monkeypatch.setattr(shutil, "copyfile", full)
    with pytest.raises(ckpt.DiskFullError, match=r"the save needs \d\.\d KB.*\(step-00000001\.pt newest\)") as info:
        ckpt.save_checkpoint(_state(2), tmp_path, 2, keep_last=3)
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC and "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "step-00000001.pt"]
    assert ckpt.read_checkpoint(tmp_path / "last.pt")["progress"]["global_step"] == 1


def test_other_os_errors_pass_through(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(torch, "save", denied)
    with pytest.raises(PermissionError):
        ckpt.save_checkpoint(_state(1), tmp_path, 1, keep_last=3)
