"""Point-cloud files in every format, the folder dataset, and the generated shapes."""

import numpy as np
import pytest
import torch

from maeflow.data import build_dataset
from maeflow_pointcloud.data import resample
from maeflow_pointcloud.readers import read_points, write_ply
from maeflow_pointcloud.shapes import PRIMITIVES, SyntheticShapes

CUBE_V = [[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]
CUBE_F = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]  # quads


def write_off(path, header_on_one_line=False):
    counts = f"{len(CUBE_V)} {len(CUBE_F)} 0"
    lines = [f"OFF{counts}"] if header_on_one_line else ["OFF", "# a cube", counts]
    lines += [" ".join(map(str, v)) for v in CUBE_V] + [f"4 {' '.join(map(str, f))}" for f in CUBE_F]
    path.write_text("\n".join(lines) + "\n")


def write_obj(path):
    lines = [f"v {x} {y} {z}" for x, y, z in CUBE_V]
    lines += ["f " + " ".join(f"{i + 1}/1/1" for i in f) for f in CUBE_F]  # 1-based, v/vt/vn
    path.write_text("\n".join(lines) + "\n")


def test_point_files_round_trip(tmp_path, seeded):
    pts = torch.rand(50, 3, generator=seeded) * 2 - 1
    np.save(tmp_path / "a.npy", pts.numpy())
    np.savetxt(tmp_path / "a.xyz", pts.numpy())
    # ModelNet-style text: x,y,z,nx,ny,nz
    np.savetxt(tmp_path / "a.txt", torch.cat([pts, torch.ones(50, 3)], 1).numpy(), delimiter=",")
    write_ply(tmp_path / "a_bin.ply", pts, binary=True)
    write_ply(tmp_path / "a_ascii.ply", pts, binary=False)
    for name in ("a.npy", "a.xyz", "a.txt", "a_bin.ply", "a_ascii.ply"):
        got = read_points(tmp_path / name)
        assert got.shape == (50, 3) and torch.allclose(got, pts, atol=1e-6), name


def test_ply_with_extra_properties_and_a_face_element(tmp_path):
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment made by a test\nelement vertex 3\n"
        "property double x\nproperty double y\nproperty double z\nproperty uchar red\n"
        "element face 1\nproperty list uchar int vertex_indices\nend_header\n"
    )
    rec = np.zeros(3, dtype=[("x", "<f8"), ("y", "<f8"), ("z", "<f8"), ("red", "u1")])
    rec["x"], rec["y"], rec["z"] = [1, 2, 3], [4, 5, 6], [7, 8, 9]
    faces = np.array([3], dtype="u1").tobytes() + np.array([0, 1, 2], dtype="<i4").tobytes()
    (tmp_path / "v.ply").write_bytes(header.encode() + rec.tobytes() + faces)
    assert read_points(tmp_path / "v.ply").tolist() == [[1, 4, 7], [2, 5, 8], [3, 6, 9]]


@pytest.mark.parametrize("kind", ["off", "off_one_line", "obj"])
def test_meshes_are_sampled_on_their_surface(tmp_path, kind):
    path = tmp_path / f"cube.{kind[:3]}"
    write_obj(path) if kind == "obj" else write_off(path, header_on_one_line=kind == "off_one_line")
    pts = read_points(path, num_mesh_points=3000, generator=torch.Generator().manual_seed(0))
    assert pts.shape == (3000, 3)
    # on the surface of the [-1, 1]³ cube: one coordinate at ±1, all inside
    assert torch.allclose(pts.abs().amax(1), torch.ones(3000), atol=1e-5)
    # area-weighted: the six equal faces get about equal shares
    face = (pts.abs() > 1 - 1e-5).float().argmax(1) * 2 + (pts.gather(1, pts.abs().argmax(1, keepdim=True)) > 0).long()[
        :, 0
    ]
    share = torch.bincount(face, minlength=6).float() / 3000
    assert share.min() > 0.12 and share.max() < 0.22


def test_bad_files_name_the_file(tmp_path):
    nan = torch.rand(20, 3)
    nan[4, 0] = float("inf")
    np.save(tmp_path / "inf.npy", nan.numpy())
    with pytest.raises(ValueError, match=r"inf\.npy.*NaN or inf"):
        read_points(tmp_path / "inf.npy")
    (tmp_path / "junk.ply").write_bytes(b"\x00\x01garbage")
    with pytest.raises(ValueError, match="junk.ply"):
        read_points(tmp_path / "junk.ply")
    (tmp_path / "short.txt").write_text("1 2 3\n4 5\n")
    with pytest.raises(ValueError, match="short.txt"):
        read_points(tmp_path / "short.txt")


def test_resample_to_exactly_n_points(seeded):
    pts = torch.rand(10, 3, generator=seeded)
    up = resample(pts, 25, seeded)  # all 10 points, plus repeats
    assert up.shape == (25, 3)
    assert {tuple(p) for p in pts.tolist()} <= {tuple(p) for p in up.tolist()}
    down = resample(pts, 4, seeded)  # a subset without repeats
    assert down.shape == (4, 3) and len({tuple(p) for p in down.tolist()}) == 4


def _make_folder(root, bad=False):
    g = torch.Generator().manual_seed(0)
    for split in ("train", "test"):
        for cls in ("chair", "table"):
            d = root / split / cls
            d.mkdir(parents=True)
            np.save(d / "a.npy", (torch.rand(300, 3, generator=g) * 5).numpy())
            write_ply(d / "b.ply", torch.rand(40, 3, generator=g))  # fewer points than asked: resampled
            write_off(d / "c.off")
    if bad:
        broken = torch.rand(30, 3)
        broken[0, 0] = float("nan")
        np.save(root / "train" / "chair" / "nan.npy", broken.numpy())
        (root / "train" / "table" / "broken.ply").write_text("not a ply file")


def test_folder_dataset_labels_resampling_and_normalization(tmp_path):
    _make_folder(tmp_path)
    ds = build_dataset("pointcloud_folder", "test", root=str(tmp_path), num_points=128)
    assert len(ds) == 6 and ds.num_classes == 2 and ds.classes == ["chair", "table"]
    labels = []
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.shape == (128, 3) and x.dtype == torch.float32
        assert abs(x.norm(dim=1).max().item() - 1) < 1e-5  # unit sphere
        labels.append(y)
    assert labels == [0, 0, 0, 1, 1, 1]
    assert torch.equal(ds[0][0], ds[0][0])  # the test split is deterministic
    train = build_dataset("pointcloud_folder", "train", root=str(tmp_path), num_points=128)
    assert train[0][0].norm(dim=1).max() > 0  # augmented (scale+translate), still finite
    assert torch.isfinite(train[0][0]).all()


def test_folder_dataset_skips_or_rejects_bad_files(tmp_path):
    _make_folder(tmp_path, bad=True)
    with pytest.warns(RuntimeWarning, match="skipping"):
        ds = build_dataset("pointcloud_folder", "train", root=str(tmp_path), num_points=64)
    assert len(ds) == 6 and len(ds.skipped) == 2
    assert {p.rsplit("/", 1)[-1] for p, _ in ds.skipped} == {"nan.npy", "broken.ply"}
    assert any("NaN or inf" in reason for _, reason in ds.skipped)
    with pytest.raises(ValueError, match=r"nan\.npy"):
        build_dataset("pointcloud_folder", "train", root=str(tmp_path), num_points=64, strict=True)
    with pytest.raises(ValueError, match="does not exist"):
        build_dataset("pointcloud_folder", "train", root=str(tmp_path / "nowhere"))


def test_synthetic_shapes_are_deterministic_labeled_and_split():
    a = SyntheticShapes("train", num_points=128, size=16, seed=3)
    b = SyntheticShapes("train", num_points=128, size=16, seed=3)
    t = SyntheticShapes("test", num_points=128, size=16, seed=3)
    assert a.num_classes == len(PRIMITIVES) >= 6
    for i in (0, 5, 15):
        assert torch.equal(a[i][0], b[i][0]) and a[i][1] == i % a.num_classes
        assert not torch.equal(a[i][0], t[i][0])
        assert abs(a[i][0].norm(dim=1).max().item() - 1) < 1e-5
    assert not torch.equal(a[0][0], SyntheticShapes("train", num_points=128, size=16, seed=4)[0][0])
    # rotation and scale vary within a class
    assert not torch.allclose(a[0][0].abs().amax(0), a[a.num_classes][0].abs().amax(0), atol=1e-2)
    ds = build_dataset("synthetic_shapes", "test", num_points=64, size=8)
    assert ds[3][0].shape == (64, 3) and ds[3][1] == 3
    with pytest.raises(ValueError, match="unknown primitive"):
        SyntheticShapes(classes=["sphere", "blob"])


def test_split_file_lists_the_split(tmp_path):
    pc = tmp_path / "shapenet_pc"
    pc.mkdir()
    for name in ("02691156-a.npy", "02691156-b.npy", "03001627-c.npy"):
        np.save(pc / name, np.random.default_rng(0).random((100, 3)))
    lists = tmp_path / "ShapeNet-55"
    lists.mkdir()
    (lists / "train.txt").write_text("02691156-a.npy\n03001627-c.npy\n")
    (lists / "test.txt").write_text("02691156-b.npy\nmissing.npy\n")
    opts = dict(root=str(pc), split_file=str(lists / "{split}.txt"), num_points=64)
    train = build_dataset("pointcloud_folder", "train", **opts)
    assert len(train) == 2 and train.num_classes is None and train[1][1] == -1
    with pytest.warns(RuntimeWarning, match="missing.npy"):
        test = build_dataset("pointcloud_folder", "test", **opts)
    assert len(test) == 1 and len(test.skipped) == 1
