"""benchmarks/real_data/build.py: its pure functions (splits, windows, sampling, clips,
manifests) on tiny synthetic inputs, and a build of each modality whose sources are installed
(skipped where they are not: they come from Debian and PyPI packages the test suite does not
need). benchmarks/real_data/run.py: the numbers it collects from a run's metrics."""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def load(name):
    spec = importlib.util.spec_from_file_location(f"real_data_{name}", ROOT / "benchmarks" / "real_data" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = load("build")
run = load("run")


def test_stratified_split_is_disjoint_balanced_and_seeded():
    labels = np.repeat(np.arange(4), 10)
    train, test = build.stratified_split(labels, 0.2, seed=0)
    assert not set(train) & set(test) and len(train) + len(test) == 40
    assert np.bincount(labels[test]).tolist() == [2, 2, 2, 2]
    again = build.stratified_split(labels, 0.2, seed=0)
    assert np.array_equal(again[1], test)
    assert not np.array_equal(build.stratified_split(labels, 0.2, seed=1)[1], test)


def test_split_sources_holds_out_whole_sources():
    names = [f"rec{i}" for i in range(8)]
    train, test = build.split_sources(names, 0.25, seed=3, key="kick")
    assert sorted(train + test) == sorted(names) and len(test) == 2 and not set(train) & set(test)
    assert build.split_sources(names, 0.25, seed=3, key="kick") == (train, test)
    tr, te = build.split_sources(["a", "b"], 0.01, seed=0)
    assert len(tr) == len(te) == 1  # two sources: one each side, whatever the fraction
    with pytest.raises(ValueError, match="two sources"):
        build.split_sources(["only"], 0.5, seed=0)


def test_time_ranges_and_windows_never_cross_the_cut():
    (a, b), (c, d) = build.time_ranges(100, 16, 0.25)
    assert (a, b, c, d) == (0, 75, 75, 100)
    train_frames = {s + k for s in build.window_starts(a, b, 16) for k in range(16)}
    test_frames = {s + k for s in build.window_starts(c, d, 16) for k in range(16)}
    assert not train_frames & test_frames and max(test_frames) == 99 and max(train_frames) == 74
    # a short clip still gets one full window on the test side
    assert build.time_ranges(40, 16, 0.1) == ((0, 24), (24, 40))
    with pytest.raises(ValueError, match="cannot give"):
        build.time_ranges(20, 16, 0.25)


def test_square_crop_stays_inside():
    rng = np.random.default_rng(0)
    for _ in range(50):
        top, left, side = build.square_crop(48, 80, rng, (0.5, 1.0))
        assert 24 <= side <= 48 and 0 <= top <= 48 - side and 0 <= left <= 80 - side


@pytest.mark.parametrize("name", sorted(build.PAN_DIRECTIONS))
def test_pan_crops_move_one_way_inside_the_frame(name):
    dy, dx = build.PAN_DIRECTIONS[name]
    rng = np.random.default_rng(1)
    for _ in range(20):
        crops = build.pan_crops(128, 170, 16, (dy, dx), rng, (0.5, 0.75), (1.0, 2.5), 64)
        tops, lefts, sides = (np.array(c) for c in zip(*crops, strict=True))
        assert len(crops) == 16 and len(set(sides)) == 1
        assert (tops >= 0).all() and (tops + sides <= 128).all() and (lefts >= 0).all() and (lefts + sides <= 170).all()
        moving, still = (tops, lefts) if dy else (lefts, tops)
        assert (np.diff(moving) * (dy or dx) >= 0).all() and moving[-1] != moving[0] and len(set(still)) == 1


def test_cut_window_follows_the_crops():
    pytest.importorskip("PIL")
    frames = np.arange(4 * 8 * 8 * 3, dtype=np.uint8).reshape(4, 8, 8, 3)
    clip = build.cut_window(frames, 1, [(0, 0, 4), (4, 4, 4)], 4)
    assert clip.shape == (2, 4, 4, 3)
    assert np.array_equal(clip[0], frames[1, :4, :4]) and np.array_equal(clip[1], frames[2, 4:, 4:])


def test_rgb_to_yuv420p_layout_and_grey():
    grey = np.full((4, 6, 3), 128, np.uint8)
    yuv = build.rgb_to_yuv420p(grey)
    assert yuv.shape == (6, 6) and yuv.dtype == np.uint8
    assert (yuv[:4] == round(16 + 219 * 128 / 255)).all() and (yuv[4:] == 128).all()


def test_balanced_plan_uses_sources_evenly():
    plan = build.balanced_plan(["a", "b", "c"], 10, np.random.default_rng(0))
    counts = {s: plan.count(s) for s in "abc"}
    assert len(plan) == 10 and max(counts.values()) - min(counts.values()) <= 1


def test_rotation_and_surface_sampling():
    rng = np.random.default_rng(0)
    r = build.random_rotation(rng)
    assert np.allclose(r @ r.T, np.eye(3), atol=1e-10) and np.isclose(np.linalg.det(r), 1.0)
    # a unit square in z=0 split into a big and a tiny triangle: samples follow the areas
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0.0]])
    f = np.array([[0, 1, 2], [0, 2, 3]])
    pts = build.sample_surface(v, f, 4000, rng)
    assert pts.shape == (4000, 3) and np.allclose(pts[:, 2], 0) and (pts[:, :2] >= -1e-9).all()
    assert abs((pts[:, 0] > pts[:, 1]).mean() - 0.5) < 0.05  # two triangles of equal area
    unit = build.normalize_points(pts)
    assert np.isclose(np.linalg.norm(unit, axis=1).max(), 1.0) and np.allclose(unit.mean(0), 0, atol=1e-9)
    # no faces: vertices
    assert build.sample_surface(v, np.zeros((0, 3), int), 5, rng).shape == (5, 3)


def test_parse_off_with_quads_and_header_counts():
    text = "OFF 4 1 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n"
    v, f = build.parse_off(text)
    assert v.shape == (4, 3) and f.tolist() == [[0, 1, 2], [0, 2, 3]]
    v, f = build.parse_off("# comment\nCOFF\n3 1 0\n0 0 0 1 1 1 1\n1 0 0 1 1 1 1\n0 1 0 1 1 1 1\n3 0 1 2\n")
    assert f.tolist() == [[0, 1, 2]]
    with pytest.raises(ValueError, match="OFF"):
        build.parse_off("ply\n")


def test_audio_clips_have_the_length_and_come_from_loud_parts():
    rng = np.random.default_rng(0)
    sr, n = 1000, 500
    wav = np.zeros(3000, np.float32)
    wav[2000:2600] = np.sin(np.arange(600) / 3.0)  # the only sound
    for _ in range(10):
        clip = build.fit_clip(wav, n, rng, frame=50)
        assert clip.shape == (n,) and np.abs(clip).max() > 0.5  # never a silent window
    short = build.fit_clip(np.ones(100, np.float32), n, rng)
    assert short.shape == (n,) and short.sum() == 100
    out = build.augment_clip(wav, sr, n, rng)
    assert out.shape == (n,) and out.dtype == np.float32 and np.abs(out).max() <= 1
    assert len(build.change_speed(np.ones(1000, np.float32), 2.0)) == 500
    assert len(build.resample_linear(np.ones(800, np.float32), 8000, 16000)) == 1600


def test_sonic_pi_classes_first_rule_wins():
    assert build.sonic_pi_class("bd_haus") == "kick"
    assert build.sonic_pi_class("elec_hollow_kick") == "kick"
    assert build.sonic_pi_class("elec_mid_snare") == "snare"
    assert build.sonic_pi_class("elec_beep") is None
    assert build.sonic_pi_class("tabla_ghe1") == "tabla"


def test_manifest_and_idempotent_build(tmp_path, monkeypatch):
    calls = []

    def fake(tmp, opts, log):
        calls.append(opts)
        for split, n in (("train", 3), ("test", 1)):
            for cls in ("a", "b"):
                (tmp / split / cls).mkdir(parents=True, exist_ok=True)
                for i in range(n):
                    (tmp / split / cls / f"{i}.npy").write_bytes(b"x")
        records = [(s, c) for s, n in (("train", 3), ("test", 1)) for c in ("a", "b") for _ in range(n)]
        return dict(task="t", split_policy="p", file_format="f", sources=[], counts=build.class_counts(records))

    monkeypatch.setitem(build.BUILDERS, "pointcloud", fake)
    m = build.build("pointcloud", tmp_path, seed=0, log=lambda s: None)
    assert m["counts"] == {"test": {"a": 1, "b": 1}, "train": {"a": 3, "b": 3}} and m["total_files"] == 8
    on_disk = json.loads((tmp_path / "pointcloud" / "manifest.json").read_text())
    assert on_disk["options"]["seed"] == 0 and on_disk["folder_dataset"] == "pointcloud_folder"
    assert build.is_built(tmp_path / "pointcloud", on_disk["options"])
    build.build("pointcloud", tmp_path, seed=0, log=lambda s: None)
    assert len(calls) == 1  # skipped: same options
    with pytest.raises(FileExistsError, match="--force"):
        build.build("pointcloud", tmp_path, seed=1, log=lambda s: None)
    build.build("pointcloud", tmp_path, seed=1, force=True, log=lambda s: None)
    assert len(calls) == 2 and not list(tmp_path.glob(".pointcloud.partial-*"))


def test_failed_build_leaves_nothing(tmp_path, monkeypatch):
    def broken(tmp, opts, log):
        (tmp / "train").mkdir()
        raise FileNotFoundError("no sources")

    monkeypatch.setitem(build.BUILDERS, "video", broken)
    with pytest.raises(FileNotFoundError):
        build.build("video", tmp_path, log=lambda s: None)
    assert list(tmp_path.iterdir()) == []


def _needs(*modules, paths=()):
    for m in modules:
        pytest.importorskip(m)
    for p in paths:
        if not Path(p).exists():
            pytest.skip(f"{p} is not installed")


@pytest.mark.slow
def test_small_real_builds_load_through_the_folder_datasets(tmp_path):
    """With the sources installed: a tiny build per modality reads through maeflow's folder dataset."""
    from maeflow.data import build_dataset

    small = {
        "image": ({"train_per_class": 2}, "image_folder", dict(img_size=32, in_chans=1)),
        "video": ({"train_per_class": 2, "test_per_class": 1}, "video_folder", dict(num_frames=4, img_size=32)),
        "audio": ({"train_per_class": 2, "test_per_class": 1}, "audio_folder", dict(input_size=(64, 32))),
        "pointcloud": ({"train_per_class": 2, "test_per_class": 1}, "pointcloud_folder", dict(num_points=64)),
    }
    built = 0
    for modality, (overrides, name, options) in small.items():
        try:
            m = build.build(modality, tmp_path, overrides=overrides, log=lambda s: None)
        except (FileNotFoundError, ImportError, ModuleNotFoundError):
            continue  # this source is not installed here
        built += 1
        for split in ("train", "test"):
            ds = build_dataset(name, split, root=str(tmp_path / modality), **options)
            assert len(ds) == sum(m["counts"][split].values()) and not ds.skipped
            x, y = ds[0]
            assert 0 <= y < ds.num_classes
    if not built:
        pytest.skip("none of the real-data sources is installed")
    shutil.rmtree(tmp_path)


def test_run_collects_losses_and_probes():
    records = [{"type": "train", "step": s, "loss": 1.0 - s / 10} for s in range(1, 8)]
    records.append({"type": "eval", "step": 7, "final": True, "knn_top1": 60.0, "random_knn_top1": 50.0,
                    "linear_top1": 70.0, "random_linear_top1": 65.0, "finetune_top1": 80.0,
                    "random_finetune_top1": 72.0})  # fmt: skip
    row = run.run_row(records, {"trivial": 0.8, "model_loss": 0.4}, last=2)
    assert row["final_loss"] == pytest.approx(0.35) and row["loss_ratio"] == pytest.approx(0.35 / 0.8)
    assert row["knn_gain"] == 10.0 and row["finetune_gain"] == 8.0 and row["steps"] == 7
    agg = run.aggregate([row, {**row, "knn_pre": 70.0}])
    assert agg["knn_pre"]["mean"] == 65.0 and agg["knn_pre"]["n"] == 2 and agg["knn_pre"]["std"] > 0
    assert run.summarize([None]) is None
    result = {"date": "2026-01-01", "argv": [], "seeds": [0, 1],
              "environment": {"machine": {"cpu": "cpu", "cores": 2, "loadavg_start": [1.0]},
                              "versions": {"torch": "x"}, "commit": "abc", "dirty": False},
              "modalities": {"video": {"runs": {"0": row}, "summary": agg, "data": None}}}  # fmt: skip
    md = run.to_markdown(result)
    assert "| video |" in md and "65.0 ± 7.1 vs 50.0" in md


def test_run_reports_portable_paths():
    assert run.portable(run.ROOT / "runs" / "x") == "runs/x"
    assert run.portable(Path.home() / ".cache" / "y").startswith("~/") or Path.home() == run.ROOT
    assert run.portable("/nonexistent/elsewhere") == "/nonexistent/elsewhere"


def test_parse_sets():
    assert build.parse_sets(["video.pan_speed=[0.3, 1.0]", "audio.train_per_class=300"]) == {
        "video": {"pan_speed": [0.3, 1.0]}, "audio": {"train_per_class": 300}}
    for bad in ("video.nope=1", "nomodality.frames=1", "video.frames"):
        with pytest.raises(ValueError, match="MODALITY.OPTION"):
            build.parse_sets([bad])


def test_reevaluation_replaces_the_trainers_probe_numbers():
    records = [{"type": "train", "step": 1, "loss": 0.5},
               {"type": "eval", "step": 1, "final": True, "knn_top1": 60.0, "random_knn_top1": 50.0}]  # fmt: skip
    again = {"pretrained": {"knn_top1": 61.0, "linear_top1": 70.0, "finetune_top1": 75.0},
             "random_init": {"knn_top1": 49.0, "linear_top1": 66.0, "finetune_top1": 55.0}}  # fmt: skip
    assert run.eval_json_as_record(again) == {
        "knn_top1": 61.0, "linear_top1": 70.0, "finetune_top1": 75.0,
        "random_knn_top1": 49.0, "random_linear_top1": 66.0, "random_finetune_top1": 55.0}  # fmt: skip
    row = run.run_row(records, None, evaluation=again)
    assert (row["knn_pre"], row["knn_rand"], row["finetune_gain"]) == (61.0, 49.0, 20.0)
    assert run.run_row(records, None)["knn_pre"] == 60.0  # without it: the trainer's


def test_reevaluation_flags_are_the_configs_eval_section_and_parse():
    pytest.importorskip("torch")
    from maeflow.cli import build_parser

    config = ROOT / "benchmarks" / "real_data" / "configs" / "audio.yaml"
    flags = run.eval_flags(config, ["eval.finetune_label_fraction=0.05", "eval.finetune_layer_decay=0.5"])
    args = build_parser().parse_args(["eval", "RUN", *flags])
    assert (args.finetune_label_fraction, args.finetune_layer_decay) == (0.05, 0.5)
    assert args.finetune_epochs > 0 and args.knn_k == 20 and args.linear_epochs == 100
    assert (args.train_split, args.test_split) == ("train", "test")
    assert run.finetune_protocol(config, ["eval.finetune_layer_decay=0.5"])["layer_decay"] == 0.5
