"""`maeflow eval RUN` gives the same numbers every time, for every modality (issue 13).

Each case trains a tiny run for two steps, then evaluates its directory twice through the CLI
and compares every number but the timing. Point clouds read a folder of files, whose mesh
sampling and resampling used to be random for the probes' un-augmented train items.
"""

import json

import numpy as np
import pytest

from maeflow.cli import main

CONFIG = """
model: {{name: {model}}}
data: {{name: {data}, batch_size: 16, num_workers: 0, options: {options}}}
train: {{epochs: 1, max_steps: 2, log_every: 1, progress: false, tensorboard: false, reconstruction: false}}
eval: {{final: false, options: {eval_options}}}
run: {{output_dir: {out}}}
"""


def _point_folder(root):
    """A labelled folder of point files (more points than the model reads, so they are resampled)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 6)):
        for label, shape in enumerate(("ball", "slab")):
            folder = root / split / shape
            folder.mkdir(parents=True)
            for i in range(n):
                pts = rng.normal(size=(600, 3)) * ((1, 1, 1) if label == 0 else (1, 1, 0.1))
                np.save(folder / f"{i:03d}.npy", pts.astype(np.float32))
    return root


CASES = {
    "image": ("mae_vit_test", "digits", "{}", "{test_fraction: 0.1}"),
    "video": ("videomae_vit_test", "moving_digits", "{num_samples: 40, num_frames: 8, img_size: 32}", "{}"),
    "audio": ("audiomae_vit_test", "synthetic_sounds", "{train_size: 32, test_size: 16}", "{}"),
    "pointcloud": ("pointmae_test", "pointcloud_folder", "{root: ROOT}", "{}"),
}


@pytest.mark.parametrize("modality", list(CASES))
def test_two_evaluations_of_one_run_print_identical_numbers(modality, tmp_path, capsys):
    model, data, options, eval_options = CASES[modality]
    if modality == "pointcloud":
        options = options.replace("ROOT", str(_point_folder(tmp_path / "points")))
    config = tmp_path / "tiny.yaml"
    config.write_text(CONFIG.format(model=model, data=data, options=options, eval_options=eval_options,
                                    out=tmp_path / "run"))  # fmt: skip
    assert main(["train", str(config)]) == 0
    results, printed = [], []
    for i in range(2):
        capsys.readouterr()
        out = tmp_path / f"eval{i}.json"
        args = ["eval", str(tmp_path / "run"), "--knn-k", "3", "--linear-epochs", "2", "--device", "cpu"]
        assert main([*args, "--json", str(out)]) == 0
        lines = capsys.readouterr().out.splitlines()
        printed.append([line for line in lines if "%" in line or line.startswith("reconstruction loss")])
        result = json.loads(out.read_text())
        result["pretrained"].pop("seconds", None)
        results.append((result["pretrained"], result["reconstruction"]))
    assert results[0] == results[1]
    assert printed[0] == printed[1] and printed[0]
    # the loss is printed beside the trivial baseline it has to beat (issue 13)
    assert any(line.startswith("reconstruction loss") and "trivial baseline" in line for line in printed[0])
    rec = results[0][1]
    assert rec["trivial"] == min(v for k, v in rec.items() if k in ("zeros", "mean target", "baseline_pred"))
    assert rec["ratio"] == pytest.approx(rec["model_loss"] / rec["trivial"])
