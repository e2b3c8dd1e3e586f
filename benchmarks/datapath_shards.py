"""CPU data path: samples/s of folder datasets vs their tar shards, and video decoders.

    python benchmarks/datapath_shards.py              # a few minutes; writes benchmarks/results/
    python benchmarks/datapath_shards.py --dry-run    # tiny generated data, prints, writes nothing

Every rate goes through the trainer's own loader (``ShardedSampler`` + ``build_dataloader``,
per-sample seeds, ``num_workers`` 1 and 2): one warm-up batch, then batches for ``--seconds``;
samples/s (clips/s for video: with ``repeats`` each decoded video gives that many clips). The
cases compared with each other are measured in turn, ``--rounds`` times, and the median kept,
so that the load of a shared machine drifts over all of them alike.

Data: the real-data cache that ``benchmarks/real_data/build.py`` writes (``--real-data``,
default ``~/.cache/maeflow/real_data``: MNIST PNGs, FLAC notes, point-cloud ``.npy`` files),
each sharded with ``maeflow.data.shardio.write_shards`` into a temporary folder. Video: short
MP4s (H.264, 320 px wide, 130 frames, a key frame every 50) transcoded with PyAV from the real clips that Debian's
``opencv-doc`` ships (``vtest.avi``, ``Megamind.avi``), else the cache's 64²
MP4s; decoded with PyAV (today's path), torchcodec and decord (each where it loads), from
the folder and from shards. ``--dry-run`` generates a few tiny files of each kind instead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
OPENCV_SAMPLES = Path("/usr/share/doc/opencv-doc/examples/data")
VIDEO_OPTIONS = {"num_frames": 16, "stride": 4, "img_size": 112, "in_chans": 3}


def _versions() -> dict:
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("av", "torchcodec", "decord", "webdataset", "PIL", "soundfile"):
        try:
            out[name] = getattr(__import__(name), "__version__", "?")
        except Exception as exc:  # not installed, or fails to load
            out[name] = f"unavailable ({type(exc).__name__})"
    return out


def _commit() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=HERE).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, cwd=HERE).stdout
        return rev + ("+dirty" if dirty.strip() else "")
    except OSError:
        return "unknown"


# ---------------------------------------------------------------------------------------------
# data


def transcode_clips(out: Path, count: int, frames: int = 130, width: int = 320, keyint: int = 50) -> list[Path]:
    """Up to ``count`` H.264 MP4s of ``frames`` consecutive frames (``width`` px wide, a key
    frame every ``keyint`` frames, as web video has), cut from the opencv-doc samples."""
    import av

    sources = [OPENCV_SAMPLES / n for n in ("vtest.avi", "Megamind.avi") if (OPENCV_SAMPLES / n).exists()]
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for src in sources:
        with av.open(str(src)) as container:
            sink = stream = path = None
            for i, frame in enumerate(container.decode(container.streams.video[0])):
                if i % frames == 0:
                    if sink is not None:
                        _close(sink, stream)
                        written.append(path)
                    if len(written) >= count:
                        sink = None
                        break
                    h = int(round(frame.height * width / frame.width / 2)) * 2
                    path = out / f"clip_{len(written):03d}.mp4"
                    sink = av.open(str(path), mode="w")
                    stream = sink.add_stream("libx264", rate=25)
                    stream.width, stream.height, stream.pix_fmt = width, h, "yuv420p"
                    stream.codec_context.gop_size = keyint
                    stream.options = {"crf": "23", "preset": "veryfast", "x264-params": f"keyint={keyint}"}
                small = frame.reformat(width=width, height=stream.height, format="yuv420p")
                small.pts = None  # the encoder counts frames itself; the source's timestamps do not carry over
                for packet in stream.encode(small):
                    sink.mux(packet)
            if sink is not None:  # a last part shorter than `frames`: dropped
                sink.close()
                (out / f"clip_{len(written):03d}.mp4").unlink(missing_ok=True)
    return written


def _close(sink, stream) -> None:
    for packet in stream.encode():
        sink.mux(packet)
    sink.close()


def tiny_data(root: Path) -> dict[str, Path]:
    """A few generated files per modality (``--dry-run``)."""
    import soundfile as sf
    from PIL import Image

    sys.path.insert(0, str(HERE.parent / "tests" / "plugins" / "video"))
    rng = np.random.default_rng(0)
    for i in range(8):
        (root / "image" / "a").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(root / "image" / "a" / f"{i}.png")
        (root / "audio" / "a").mkdir(parents=True, exist_ok=True)
        sf.write(root / "audio" / "a" / f"{i}.flac", rng.normal(0, 0.1, 16000).astype(np.float32), 16000)
        (root / "pointcloud" / "a").mkdir(parents=True, exist_ok=True)
        np.save(root / "pointcloud" / "a" / f"{i}.npy", rng.normal(size=(2048, 3)).astype(np.float32))
    return {"image": root / "image", "audio": root / "audio", "pointcloud": root / "pointcloud"}


# ---------------------------------------------------------------------------------------------
# measuring


def rate(dataset, workers: int, batch: int, seconds: float) -> dict:
    """Samples/s of the trainer's loader over ``dataset`` (one warm-up batch not counted)."""
    from maeflow.data import ShardedSampler, build_dataloader

    sampler = ShardedSampler(len(dataset), batch, seed=0, order=getattr(dataset, "epoch_order", None))
    loader = build_dataloader(dataset, batch, sampler=sampler, seed=0, num_workers=workers, drop_last=True,
                              persistent_workers=workers > 0, pin_memory=False)  # fmt: skip
    count, start, epoch = 0, None, 0
    while True:
        sampler.set_epoch(epoch)
        for inputs, *_ in loader:
            if start is None:
                start = time.perf_counter()
                continue
            count += inputs.shape[0]
            if time.perf_counter() - start >= seconds:
                elapsed = time.perf_counter() - start
                return {"samples_per_s": round(count / elapsed, 2), "samples": count, "seconds": round(elapsed, 2)}
        epoch += 1


class DecordClip:
    """``read_clip``'s sampling with decord's ``VideoReader`` (for the comparison only)."""

    def __init__(self, num_frames: int, stride: int):
        self.num_frames, self.stride = num_frames, stride

    def __call__(self, path) -> torch.Tensor:
        import decord

        from maeflow_video.data import clip_indices

        vr = decord.VideoReader(str(path), num_threads=1)
        n = len(vr)
        span = (self.num_frames - 1) * self.stride + 1
        start = int(torch.randint(0, n - span + 1, (1,))) if n > span else None
        idx = clip_indices(n, self.num_frames, self.stride, start, "loop")
        return torch.from_numpy(vr.get_batch(idx).asnumpy())


def _decord_problem() -> str | None:
    try:
        import decord  # noqa: F401
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:200]
    return None


def shard(dataset, name: str, options: dict, out: Path, shard_size: int) -> Path:
    from maeflow.data.records import dataset_records
    from maeflow.data.shardio import write_shards

    header = {"source": {"dataset": name, "split": "train", "options": options}, "classes": dataset.classes,
              "num_classes": dataset.num_classes}  # fmt: skip
    write_shards(dataset_records(dataset), out, "train", shard_size, header)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny generated data; print, write nothing")
    parser.add_argument("--real-data", default=os.path.expanduser("~/.cache/maeflow/real_data"))
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per rate and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per rate (the median is kept)")
    parser.add_argument("--clips", type=int, default=8, help="MP4s to transcode from the opencv-doc samples")
    parser.add_argument("--tag", default="", help="suffix of the results file name (datapath_shards_DATE_TAG.json)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    from maeflow.data import build_dataset
    from maeflow.data.folder import FolderDataset, scan_folder
    from maeflow_video.data import VIDEO_EXTENSIONS, video_codec

    seconds = 0.3 if args.dry_run else args.seconds
    rounds = 1 if args.dry_run else args.rounds
    workers_list = (1,) if args.dry_run else (1, 2)
    rows: list[dict] = []

    pending: list[tuple[dict, object]] = []

    def record(modality: str, source: str, decoder: str, workers: int, ds, batch: int, **extra) -> None:
        pending.append(({"modality": modality, "source": source, "decoder": decoder, "workers": workers,
                         "batch": batch, **extra}, ds))  # fmt: skip

    def flush() -> None:
        """Measure the queued cases in turn, ``--rounds`` times (load drifts hit every case
        alike), and keep each case's median."""
        runs: list[list[float]] = [[] for _ in pending]
        for _ in range(rounds):
            for k, (row, ds) in enumerate(pending):
                runs[k].append(rate(ds, row["workers"], row["batch"], seconds)["samples_per_s"])
        for (row, _), values in zip(pending, runs, strict=True):
            row.update(samples_per_s=statistics.median(values), rounds=values)
            rows.append(row)
            extra = {k: v for k, v in row.items() if k in ("repeats",)}
            print(f"{row['modality']:10s} {row['source']:7s} {row['decoder']:11s} workers={row['workers']} "
                  f"{extra or ''} {row['samples_per_s']:9.1f}/s  {values}", flush=True)  # fmt: skip
        pending.clear()

    with tempfile.TemporaryDirectory(prefix="maeflow-datapath-") as tmp:
        tmp = Path(tmp)
        real = Path(args.real_data)
        folders = tiny_data(tmp / "tiny") if args.dry_run else {m: real / m / "train" for m in
                                                                ("image", "audio", "pointcloud")}  # fmt: skip
        plain = {"image": ("image_folder", {"img_size": 32, "in_chans": 1}, 64),
                 "audio": ("audio_folder", {"input_size": [256, 128]}, 16),
                 "pointcloud": ("pointcloud_folder", {"num_points": 1024}, 32)}  # fmt: skip
        for modality, (name, options, batch) in plain.items():
            if not folders[modality].is_dir():
                print(f"{modality}: no folder {folders[modality]} (build it: python benchmarks/real_data/build.py)")
                continue
            folder = build_dataset(name, "train", root=str(folders[modality]), **options)
            root = shard(folder, name, options, tmp / f"{modality}-shards", 500)
            shards = build_dataset("webdataset", "train", root=str(root))
            batch = min(batch, len(folder) // 2)
            for workers in workers_list:
                record(modality, "folder", "-", workers, folder, batch, num_samples=len(folder))
                record(modality, "shards", "-", workers, shards, batch, num_samples=len(folder))
                flush()

        # video: the same MP4s through every decoder, folder and shards, and repeated sampling
        clips = [] if args.dry_run else transcode_clips(tmp / "mp4" / "clips", args.clips)
        if args.dry_run:
            sys.path.insert(0, str(HERE.parent / "tests" / "plugins" / "video"))
            from test_data import synthetic_frames, write_video

            (tmp / "mp4" / "clips").mkdir(parents=True)
            for i in range(4):
                write_video(tmp / "mp4" / "clips" / f"{i}.mp4", synthetic_frames(70, 64, 96))
            video_root, options, batch = tmp / "mp4", {**VIDEO_OPTIONS, "img_size": 32}, 2
        elif clips:
            video_root, options, batch = tmp / "mp4", dict(VIDEO_OPTIONS), 2
        else:
            video_root, options, batch = real / "video" / "train", {**VIDEO_OPTIONS, "img_size": 64, "stride": 1}, 8
        source_note = (f"{len(clips)} opencv-doc sample parts transcoded to 320-px H.264 MP4s of 130 frames, "
                       "a key frame every 50" if clips else
                       "generated" if args.dry_run else "real-data cache 64² MP4s")  # fmt: skip
        from maeflow_video.decoders import torchcodec_problem

        decoders = ["pyav"] + (["torchcodec"] if torchcodec_problem() is None else [])
        first = build_dataset("video_folder", "train", root=str(video_root), decoder="pyav", **options)
        vroot = shard(first, "video_folder", options, tmp / "video-shards", 50)
        for workers in workers_list:
            for decoder in decoders:
                for repeats in (1, 2, 4):
                    folder = build_dataset("video_folder", "train", root=str(video_root), decoder=decoder,
                                           repeats=repeats, **options)  # fmt: skip
                    record("video", "folder", decoder, workers, folder, batch, repeats=repeats, num_samples=len(folder))
                shards = build_dataset("webdataset", "train", root=str(vroot), decoder=decoder)
                record("video", "shards", decoder, workers, shards, batch, repeats=1, num_samples=len(first))
            if _decord_problem() is None:
                codec = video_codec("train", decoder="pyav", **options)
                index = scan_folder(video_root, VIDEO_EXTENSIONS)
                ds = FolderDataset(index, load=DecordClip(options["num_frames"], options["stride"]),
                                   transform=codec.transform, verify=False)  # fmt: skip
                record("video", "folder", "decord", workers, ds, batch, repeats=1, num_samples=len(ds))
            flush()

    base = {r["workers"]: r["samples_per_s"] for r in rows
            if r["modality"] == "video" and r["source"] == "folder" and r["decoder"] == "pyav" and r["repeats"] == 1}
    for r in rows:
        if r["modality"] == "video" and r["workers"] in base:
            r["vs_pyav_folder"] = round(r["samples_per_s"] / base[r["workers"]], 2)
    result = {"benchmark": "datapath_shards", "date": dt.date.today().isoformat(), "commit": _commit(),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": 1,
                          "load_average_before": load_before, "load_average_after": os.getloadavg()},
              "versions": _versions(), "video": {"clips": source_note, **options, "decord": _decord_problem() or "ok",
                                                 "torchcodec": torchcodec_problem() or "ok"},
              "seconds_per_rate": seconds, "rounds": rounds, "rows": rows}  # fmt: skip
    if args.dry_run:
        print(json.dumps(result["video"]))
        return 0
    out = HERE / "results" / f"datapath_shards_{result['date']}{'_' + args.tag if args.tag else ''}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
