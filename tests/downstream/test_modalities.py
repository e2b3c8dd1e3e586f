"""The recipe runs for every built-in modality with its paper's augmentation: a few steps each."""

import pytest

from maeflow.downstream import Downstream, downstream_config_from_dict

CASES = {
    # VideoMAE: RandAugment with the same ops on every frame, per-frame erasing, mixup/cutmix on clips
    "video": ("videomae_vit_test", "moving_digits", {"num_samples": 96},
              {"rand_augment": "rand-m7-n4-mstd0.5-inc1", "random_erasing": 0.25, "mixup": 0.8, "cutmix": 1.0},
              {"pool": "avg"}),
    # Audio-MAE: SpecAugment time/frequency masking and mixup; multi-label BCE is the loss option
    "audio": ("audiomae_vit_test", "synthetic_sounds", {"train_size": 64, "test_size": 32},
              {"freq_mask": 8, "time_mask": 16, "mixup": 0.5}, {"pool": "avg"}),
    # Point-MAE: cls ++ max-pool head; scale-and-translate is the dataset's own training augmentation
    "pointcloud": ("pointmae_test", "synthetic_shapes", {"size": 64}, {}, {"pool": "cls_max", "norm": "none",
                                                                          "dropout": 0.5}),
}  # fmt: skip


@pytest.mark.parametrize("modality", list(CASES))
def test_finetune_runs(modality, tmp_path):
    model, data, options, augment, head = CASES[modality]
    loss = "bce" if modality == "audio" else "ce"
    cfg = downstream_config_from_dict({
        "model": {"name": model}, "head": {**head, "drop_path": 0.1},
        "data": {"name": data, "options": options, "batch_size": 16}, "augment": augment,
        "train": {"epochs": 1, "max_steps": 2, "loss": loss, "progress": False, "precision": "fp32",
                  "label_smoothing": 0.0 if loss == "bce" else 0.1, "layer_decay": 0.75},
        "run": {"output_dir": str(tmp_path), "device": "cpu"}})  # fmt: skip
    result = Downstream(cfg).fit()
    assert result.global_step == 2 and 0 <= result.top1 <= 100
    assert (tmp_path / "classifier.pt").is_file()
