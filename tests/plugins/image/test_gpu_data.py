"""The device image path (maeflow_image.gpu_data) on CPU tensors, against the torchvision CPU pipeline.

Decoding uses ``torchvision.io.decode_jpeg`` on the CPU (the same call the GPU path makes with
``device="cuda"``); crop/resize/flip/normalize are device-agnostic tensor code.
"""

import io
import math

import pytest
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import functional as TF

from maeflow_image.gpu_data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DeviceAugment,
    EncodedImageDataset,
    center_crop_boxes,
    collate_encoded,
    decode_batch,
    decode_images,
    flip_where,
    resized_crops,
    sample_crop_boxes,
)

# torchvision 0.29 deprecates its image codecs in favour of TorchCodec; the GPU machine's 0.26 does not
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")


def smooth_image(h, w, seed=0, channels=3, cell=16):
    """A smooth random (C, H, W) uint8 image (JPEG-friendly, so decode errors stay small)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(channels, max(h // cell, 2), max(w // cell, 2), generator=g)
    img = torch.nn.functional.interpolate(base[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    return (img * 255).round().clamp(0, 255).to(torch.uint8)


def to_pil(u8):
    arr = u8.permute(1, 2, 0).numpy()
    return Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)


def jpeg_bytes(u8, quality=95):
    buf = io.BytesIO()
    to_pil(u8).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# crop box sampling: torchvision's RandomResizedCrop.get_params semantics


def tv_boxes(h, w, n, scale, ratio):
    rrc = T.RandomResizedCrop(8, scale=scale, ratio=ratio)
    img = torch.empty(1, h, w)
    return torch.tensor([rrc.get_params(img, rrc.scale, rrc.ratio) for _ in range(n)], dtype=torch.float64)


@pytest.mark.parametrize("h,w", [(375, 500), (500, 333), (64, 64)])
def test_crop_boxes_stay_in_bounds_and_match_torchvision_distribution(h, w):
    scale, ratio, n = (0.2, 1.0), (3 / 4, 4 / 3), 3000
    ours = sample_crop_boxes([(h, w)] * n, scale, ratio, generator=torch.Generator().manual_seed(0)).double()
    top, left, bh, bw = ours.unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (top + bh <= h).all() and (left + bw <= w).all()
    assert (bh >= 1).all() and (bw >= 1).all()
    area = bh * bw / (h * w)
    # rounding to whole pixels widens the bounds by at most about one pixel per side
    slack = 2.5 / min(h, w)
    assert area.min() >= scale[0] - slack and area.max() <= scale[1] + 1e-9
    log_r = torch.log(bw / bh)
    assert log_r.min() >= math.log(ratio[0]) - slack and log_r.max() <= math.log(ratio[1]) + slack

    torch.manual_seed(1)
    ref = tv_boxes(h, w, n, scale, ratio)
    r_area = ref[:, 2] * ref[:, 3] / (h * w)
    r_logr = torch.log(ref[:, 3] / ref[:, 2])
    # same distribution: means and spreads of area and log-ratio, and of the relative position
    for a, b in ((area, r_area), (log_r, r_logr)):
        assert abs(a.mean() - b.mean()) < 0.02 and abs(a.std() - b.std()) < 0.02
    rel_top = (top / (h - bh).clamp(min=1))[bh < h]
    assert abs(rel_top.mean() - 0.5) < 0.05  # uniform offsets


def test_crop_boxes_fall_back_to_the_central_crop_like_torchvision():
    # a 10x1000 strip: no try of area >= 90% with ratio <= 4/3 fits, so the fallback is taken
    for h, w in ((10, 1000), (1000, 10)):
        ours = sample_crop_boxes([(h, w)], (0.9, 1.0), (3 / 4, 4 / 3), generator=torch.Generator().manual_seed(0))
        torch.manual_seed(0)
        ref = tv_boxes(h, w, 1, (0.9, 1.0), (3 / 4, 4 / 3))
        assert ours.tolist() == ref.long().tolist()


def test_crop_boxes_reject_bad_bounds():
    with pytest.raises(ValueError, match="scale"):
        sample_crop_boxes([(10, 10)], scale=(0.5, 0.2))
    with pytest.raises(ValueError, match="ratio"):
        sample_crop_boxes([(10, 10)], ratio=(0.0, 1.0))


# ---------------------------------------------------------------------------------------------
# resampling and the full recipe


def test_resized_crop_matches_the_pil_pipeline_on_the_same_box():
    u8 = smooth_image(375, 500)
    top, left, h, w = 40, 60, 200, 260
    ours = resized_crops([u8], torch.tensor([[top, left, h, w]]), (224, 224))[0]
    ref = TF.to_tensor(TF.resized_crop(to_pil(u8), top, left, h, w, [224, 224], T.InterpolationMode.BICUBIC))
    assert ours.shape == ref.shape == (3, 224, 224)
    # PIL resamples uint8 (rounding to 1/255); otherwise the same antialiased bicubic resampling
    assert (ours - ref).abs().max() < 0.02 and (ours - ref).abs().mean() < 0.003


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_batched_matmul_resampling_equals_interpolate_per_image(interpolation):
    """The default batched path (two matrix products by the antialiasing weights) gives
    F.interpolate(antialias=True)'s result, for shrinking and enlarging crops, uint8 and float
    input, and when the batch is split into several size groups."""
    images = [smooth_image(h, w, i) for i, (h, w) in enumerate([(375, 500), (60, 40), (240, 320), (33, 47)])]
    boxes = torch.tensor([[10, 20, 300, 400], [0, 0, 60, 40], [5, 7, 100, 233], [1, 2, 30, 44]])
    for imgs in (images, [im.float() / 255 for im in images]):
        ref = resized_crops(imgs, boxes, (48, 40), interpolation, method="interpolate")
        for max_pixels in (1 << 26, 20_000):  # one group, or one image per group
            out = resized_crops(imgs, boxes, (48, 40), interpolation, method="matmul", max_pixels=max_pixels)
            torch.testing.assert_close(out, ref, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="share a dtype"):
        resized_crops([images[0], images[1].float()], boxes[:2], (8, 8), method="matmul")


def test_center_crop_matches_resize_then_center_crop():
    u8 = smooth_image(300, 400, cell=60)  # smooth: the two differ by a sub-pixel offset of the crop
    size, crop_pct = 64, 0.875
    ours = resized_crops([u8], center_crop_boxes([(300, 400)], crop_pct), (size, size))[0]
    pipeline = T.Compose([T.Resize(int(size / crop_pct), T.InterpolationMode.BICUBIC), T.CenterCrop(size)])
    ref = TF.to_tensor(pipeline(to_pil(u8)))
    # the same centered 7/8 square; resize-then-crop lands up to half a pixel elsewhere (≈ 3/255 here)
    assert (ours - ref).abs().mean() < 0.02


def test_flip_where_flips_only_flagged_images():
    x = torch.arange(2 * 1 * 2 * 3, dtype=torch.float32).view(2, 1, 2, 3)
    out = flip_where(x, torch.tensor([True, False]))
    assert torch.equal(out[0], x[0].flip(-1)) and torch.equal(out[1], x[1])


def test_device_augment_shapes_ranges_and_seeding():
    images = [smooth_image(375, 500, 0), smooth_image(240, 180, 1), smooth_image(64, 64, 2)]
    aug = DeviceAugment(img_size=32)
    x = aug(images, generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 3, 32, 32) and x.dtype == torch.float32
    lo = (0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    hi = (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    per_channel = x.transpose(0, 1).reshape(3, -1)
    assert (per_channel.min(1).values >= lo - 1e-5).all() and (per_channel.max(1).values <= hi + 1e-5).all()
    again = aug(images, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, again)
    # hflip=1 flips exactly what hflip=0 produced with the same draws for the boxes
    never = DeviceAugment(img_size=32, hflip=0.0)(images, generator=torch.Generator().manual_seed(5))
    always = DeviceAugment(img_size=32, hflip=1.0)(images, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(always, never.flip(-1))


def test_device_augment_checks_its_input():
    with pytest.raises(ValueError, match="channels"):
        DeviceAugment(img_size=8)([smooth_image(16, 16, channels=1)])
    with pytest.raises(ValueError, match="hflip"):
        DeviceAugment(hflip=2.0)
    with pytest.raises(ValueError, match="std"):
        DeviceAugment(std=(0.0, 1.0, 1.0))


def test_crop_boxes_from_per_image_uniforms_do_not_depend_on_the_batch():
    sizes = [(375, 500), (200, 300), (64, 64)]
    u = torch.rand(3, 22, generator=torch.Generator().manual_seed(0))
    boxes = sample_crop_boxes(sizes, uniforms=u)
    for i in range(3):
        assert boxes[i].tolist() == sample_crop_boxes([sizes[i]], uniforms=u[i : i + 1])[0].tolist()
    with pytest.raises(ValueError, match="uniforms must be"):
        sample_crop_boxes(sizes, uniforms=u[:, :20])


def test_device_augment_with_per_image_draws():
    images = [smooth_image(375, 500, 0), smooth_image(240, 180, 1)]
    aug = DeviceAugment(img_size=32)
    draws = torch.rand(2, aug.num_draws, generator=torch.Generator().manual_seed(0))
    draws[:, -1] = torch.tensor([0.1, 0.9])  # the last draw decides the flip (p = 0.5)
    x = aug(images, draws=draws)
    assert x.shape == (2, 3, 32, 32)
    # an image's result depends on its own draws only, not on the rest of the batch
    torch.testing.assert_close(aug(images[1:], draws=draws[1:])[0], x[1], rtol=0, atol=1e-6)
    unflipped = draws.clone()
    unflipped[0, -1] = 0.9
    torch.testing.assert_close(aug(images[:1], draws=unflipped[:1])[0], x[0].flip(-1), rtol=0, atol=1e-6)
    assert DeviceAugment(img_size=32, augment=False).num_draws == 0
    with pytest.raises(ValueError, match="draws must be"):
        aug(images, draws=draws[:, :5])


def test_worker_items_batch_decode_and_bad_files(tmp_path):
    """Files → worker items (JPEG bytes; other formats decoded with PIL) → one batched decode."""
    sizes = [(375, 500), (200, 300), (120, 160)]
    samples = []
    for i, (h, w) in enumerate(sizes):
        path = tmp_path / f"img{i}.jpg"
        path.write_bytes(jpeg_bytes(smooth_image(h, w, i)))
        samples.append((path, i % 2))
    grey = tmp_path / "grey.jpg"  # a one-channel JPEG comes out as RGB
    grey.write_bytes(jpeg_bytes(smooth_image(100, 140, 9, channels=1)))
    png = tmp_path / "img.png"  # not a JPEG: decoded in the worker
    to_pil(smooth_image(50, 70, 3)).save(png)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    samples += [(grey, 1), (png, 0), (bad, 1)]

    ds = EncodedImageDataset(samples, num_draws=5)
    raws = [ds[i][0] for i in range(len(ds))]
    assert [ds[i][1] for i in range(len(ds))] == [0, 1, 0, 1, 0, 1]
    batch = collate_encoded(raws)
    assert [d.ndim for d in batch.data] == [1, 1, 1, 1, 3, 1] and batch.data[0].dtype == torch.uint8
    assert batch.draws.shape == (6, 5) and batch.paths[4] == str(png)
    assert torch.equal(batch.data[4], TF.pil_to_tensor(Image.open(png).convert("RGB")))

    decoded = decode_batch(batch.data[:5], "cpu")
    assert [tuple(d.shape) for d in decoded] == [(3, h, w) for h, w in sizes] + [(3, 100, 140), (3, 50, 70)]
    batched = decode_images(batch.data[:4], "cpu")
    assert all(torch.equal(a, b) for a, b in zip(decoded[:4], batched, strict=True))
    assert torch.equal(decoded[4], batch.data[4])
    # decode_jpeg agrees with PIL's decoder up to IDCT differences
    pil = TF.pil_to_tensor(Image.open(samples[0][0]).convert("RGB"))
    assert (decoded[0].float() - pil.float()).abs().mean() < 2.0

    # a file nothing can decode is reported and replaced, so the batch keeps its size
    reports = []
    out = decode_batch(batch.data, "cpu", paths=batch.paths, on_bad=lambda p, why: reports.append((p, why)))
    assert len(out) == 6 and [p for p, _ in reports] == [str(bad)]
    assert torch.equal(out[5], out[0])
    with pytest.raises(ValueError, match="no readable image"):
        decode_batch(batch.data[5:], "cpu", paths=batch.paths[5:])


def test_empty_sample_list_is_an_error():
    with pytest.raises(ValueError, match="at least one file"):
        EncodedImageDataset([])
