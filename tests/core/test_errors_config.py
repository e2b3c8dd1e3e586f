"""Config mistakes end in one line naming the problem and the fix (exit code 2 from the CLI)."""

import pytest

import maeflow
from maeflow.cli import main
from maeflow.data import build_dataset


@pytest.fixture
def tiny_config(write_tiny_config):
    return write_tiny_config(max_steps=1, reconstruction=False)


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"maeflow {argv[0]}: error:") and "Traceback" not in err and "\n" not in err, err
    return err


# ---------------------------------------------------------------- mask_ratio leaves tokens on both sides

TEST_PRESETS = ["mae_vit_test", "videomae_vit_test", "videomae_vit_spacetime_test", "audiomae_vit_test",
                "pointmae_test", "pointmae_block_test"]  # fmt: skip


@pytest.mark.parametrize("name", TEST_PRESETS)
def test_mask_ratio_that_masks_nothing_is_rejected_for_every_modality(name):
    with pytest.raises(ValueError, match=r"0 masked: MAE needs at least one masked and one visible token; "
                                         r"set mask_ratio to at least (0\.\d+)") as info:  # fmt: skip
        maeflow.create_model(name, mask_ratio=0.0)
    least = float(info.value.args[0].rsplit(" ", 1)[-1])
    model = maeflow.create_model(name, mask_ratio=least)  # the ratio the message names works
    out = model(model.tokenizer.example_inputs(2))
    assert out.mask.any(dim=1).all() and (~out.mask).any(dim=1).all() and out.loss.item() > 0


def test_mask_check_runs_under_a_meta_default_device():
    import torch

    with torch.device("meta"):  # as maeflow bench counts parameters
        assert maeflow.create_model("videomae_vit_test").mask_ratio == 0.9
        with pytest.raises(ValueError, match="0 masked"):
            maeflow.create_model("mae_vit_test", mask_ratio=0.0)


def test_mask_ratio_uses_the_maskers_rounding():
    # 16 point groups at 0.05: "mask" rounding (Point-MAE) masks int(0.8) = 0 groups, "keep" masks one
    with pytest.raises(ValueError, match="leaves 16 of 16 tokens visible"):
        maeflow.create_model("pointmae_test", mask_ratio=0.05)
    assert maeflow.create_model("pointmae_test", mask_ratio=0.05, mask_rounding="keep").mask_ratio == 0.05


def test_structured_masker_settings_that_mask_nothing_are_rejected():
    with pytest.raises(ValueError, match="no mask_ratio changes that.*masker's own settings"):
        maeflow.create_model("audiomae_vit_timefreq_test", mask_time_ratio=0.0, mask_freq_ratio=0.0)


def test_mask_ratio_zero_from_the_cli(tiny_config, capsys):
    err = one_line_error(capsys, ["train", str(tiny_config), "model.args.mask_ratio=0"])
    assert "mask_ratio=0" in err and "set mask_ratio to at least 0.0625" in err


# ---------------------------------------------------------------- model arguments are type-checked


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (dict(depth="abc"), "model option 'depth' must be int, got 'abc' (str)"),
        (dict(depth=2.5), "model option 'depth' must be int, got 2.5 (float)"),
        (dict(depth=True), "model option 'depth' must be int, got True (bool)"),
        (dict(mask_ratio="high"), "model option 'mask_ratio' must be float, got 'high'"),
        (dict(norm_pix_loss="yes"), "model option 'norm_pix_loss' must be bool, got 'yes'"),
        (dict(img_size=[32, 32, 3]), "'img_size' must be int or a list of 2 (int, int), got [32, 32, 3]"),
        (dict(masker=None), "model option 'masker' must be str, got None"),
    ],
)
def test_model_arguments_of_the_wrong_type_name_key_type_and_value(overrides, expected):
    with pytest.raises(ValueError) as info:
        maeflow.create_model("mae_vit_test", **overrides)
    assert expected in str(info.value)


def test_model_arguments_of_the_right_type_are_accepted():
    # an int for a float, a YAML list for a tuple, null for an optional
    model = maeflow.create_model("mae_vit_test", mlp_ratio=2, img_size=[32, 32])
    assert model.config.mlp_ratio == 2 and model.tokenizer.grid == (4, 4)
    assert maeflow.create_model("audiomae_vit_test", mask_time_ratio=None).config.mask_time_ratio is None
    with pytest.raises(ValueError, match=r"'decoder_window' must be a list of 2 \(int, int\)"):
        maeflow.create_model("audiomae_vit_test", decoder_window=[2, "a"])


def test_depth_abc_from_the_cli(tiny_config, capsys):
    err = one_line_error(capsys, ["train", str(tiny_config), "model.args.depth=abc"])
    assert "model option 'depth' must be int, got 'abc' (str)" in err


# ---------------------------------------------------------------- dataset options


def test_missing_data_root_hint_names_a_key_that_works(tiny_config, capsys):
    err = one_line_error(capsys, ["train", str(tiny_config), "data.name=image_folder"])
    assert "data.options.root=/path/to/files" in err and "data.root=" not in err
    # the hinted key is accepted by the config (it then fails on the folder, not on the key)
    err = one_line_error(capsys, ["train", str(tiny_config), "data.name=image_folder", "data.options.root=/no/such"])
    assert "root does not exist: /no/such" in err


def test_pointcloud_normalize_must_be_a_bool(tmp_path):
    with pytest.raises(ValueError, match=r"normalize must be true .* or false .*, got 'bogus'"):
        build_dataset("pointcloud_folder", "train", root=str(tmp_path), normalize="bogus")


def test_pointcloud_normalize_bogus_from_the_cli(tmp_path, write_tiny_config, capsys):
    cfg = write_tiny_config("pc.yaml", model="pointmae_test", data="pointcloud_folder", max_steps=1,
                            reconstruction=False)  # fmt: skip
    err = one_line_error(capsys, ["train", str(cfg), f"data.options.root={tmp_path}", "data.options.normalize=bogus"])
    assert "got 'bogus'" in err


# ---------------------------------------------------------------- maeflow eval: threads and progress


@pytest.fixture
def eval_checkpoint(tmp_path):
    import torch

    torch.manual_seed(0)
    path = maeflow.save_model(maeflow.create_model("mae_vit_test", img_size=16), tmp_path / "model.pt")
    payload = torch.load(path, weights_only=True)
    payload["config"] = {"data": {"name": "digits", "options": {}}, "run": {"seed": 0, "threads": 2}}
    torch.save(payload, path)
    return path


@pytest.fixture
def restore_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_eval_threads_default_to_the_runs_and_the_flag_wins(eval_checkpoint, restore_threads, capsys):
    import torch

    args = ["eval", str(eval_checkpoint), "--linear-epochs", "1", "--knn-k", "5"]
    assert main(args) == 0 and torch.get_num_threads() == 2  # the stored run.threads
    assert main([*args, "--threads", "1"]) == 0 and torch.get_num_threads() == 1
    err = one_line_error(capsys, [*args, "--threads", "0"])
    assert "--threads must be >= 1, got 0" in err


def test_eval_finetune_reports_progress(eval_checkpoint, restore_threads, caplog):
    args = ["eval", str(eval_checkpoint), "--linear-epochs", "1", "--knn-k", "5", "--train-split", "test",
            "--finetune-epochs", "2", "--finetune-batch-size", "256"]  # fmt: skip
    with caplog.at_level("INFO", logger="maeflow.eval.finetune"):
        assert main(args) == 0
    # no terminal under pytest, so the bar is replaced by one line per epoch
    epochs = [m for m in caplog.messages if m.startswith("fine-tune epoch")]
    assert len(epochs) == 2 and epochs[0].startswith("fine-tune epoch 1/2: loss ")
    caplog.clear()
    with caplog.at_level("INFO", logger="maeflow.eval.finetune"):
        assert main([*args[:-4], "--finetune-epochs", "1", "--no-progress"]) == 0
    assert not any(m.startswith("fine-tune epoch") for m in caplog.messages)


# ---------------------------------------------------------------- ViT widths, depths and ratios


@pytest.mark.parametrize(
    "name, overrides, expected",
    [
        ("mae_vit_test", dict(embed_dim=0), "model option 'embed_dim' must be at least 1, got 0"),
        ("pointmae_test", dict(embed_dim=-1), "model option 'embed_dim' must be at least 1, got -1"),
        ("mae_vit_test", dict(decoder_num_heads=0), "'decoder_num_heads' must be at least 1"),
        ("mae_vit_test", dict(embed_dim=36, num_heads=5), "'embed_dim' (36) must be divisible by 'num_heads' (5)"),
        ("audiomae_vit_test", dict(mlp_ratio=float("-inf")), "'mlp_ratio' must be a positive finite number"),
        ("mae_vit_test", dict(depth=-1), "model option 'depth' must be >= 0, got -1"),
        ("mae_vit_test", dict(img_size=0), "the tokenizer makes 0 token(s) per sample"),
        ("pointmae_test", dict(pos_hidden=-1), "cannot build the model with pos_hidden=-1: RuntimeError"),
    ],
)
def test_model_arguments_that_cannot_build_a_vit_are_one_value_error(name, overrides, expected):
    with pytest.raises(ValueError) as info:
        maeflow.create_model(name, **overrides)
    assert expected in str(info.value)
