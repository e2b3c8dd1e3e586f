"""The plugin contract: registries, entry-point discovery, disabling, a third-party modality,
demos shipped as package data, decoding libraries as extras."""

import textwrap
from pathlib import Path

import pytest
import torch

import maeflow
from maeflow import Registry, plugins
from maeflow.hookspecs import maeflow_register

TOY_PLUGIN = '''
"""A third-party modality: 1-D signals (B, C, T), tokens are non-overlapping windows of T."""
import torch
from torch import nn
import maeflow


class WindowTokenizer(nn.Module):
    def __init__(self, length, window, channels, dim):
        super().__init__()
        if length % window:
            raise ValueError("length must be divisible by window")
        self.length, self.window, self.channels = length, window, channels
        self.embed_dim, self.num_tokens, self.target_dim = dim, length // window, window * channels
        self.proj = nn.Linear(window * channels, dim)

    def _windows(self, x):  # (B, C, T) -> (B, L, w*C)
        B, C, T = x.shape
        return x.reshape(B, C, T // self.window, self.window).permute(0, 2, 3, 1).reshape(B, T // self.window, -1)

    def forward(self, x):
        targets = self._windows(x)
        return maeflow.Tokens(self.proj(targets), None, targets, (self.num_tokens,))

    def untokenize(self, values):
        B = values.shape[0]
        v = values.reshape(B, self.num_tokens, self.window, self.channels).permute(0, 3, 1, 2)
        return v.reshape(B, self.channels, self.length)

    def example_inputs(self, batch_size, generator=None):
        return torch.randn(batch_size, self.channels, self.length, generator=generator)


def build(length=64, window=8, channels=2, dim=32, mask_ratio=0.5):
    tok = WindowTokenizer(length, window, channels, dim)
    table = maeflow.sincos_1d(dim, torch.arange(tok.num_tokens))
    enc = maeflow.Encoder(dim, 2, 2, pos_embed=maeflow.FixedPosEmbed(table), cls_token=False)
    dec = maeflow.Decoder(dim, 16, 1, 2, out_dim=tok.target_dim, num_prefix_tokens=0,
                          pos_embed=maeflow.FixedPosEmbed(maeflow.sincos_1d(16, torch.arange(tok.num_tokens))))
    model = maeflow.MaskedAutoencoder(
        tok, maeflow.registry("masker").get("random")(), enc, dec,
        maeflow.registry("target_normalizer").get("patch_norm")(),
        maeflow.registry("loss").get("mse")(), mask_ratio=mask_ratio, modality="signal")
    model.init_weights()
    return model


@maeflow.hookimpl
def maeflow_register(registry):
    registry.tokenizer("window1d", WindowTokenizer)
    registry.model("toy_signal_test", build)
'''


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """Install a plugin package the way pip would: a module plus a dist-info with entry points."""
    (tmp_path / "toy_signals.py").write_text(textwrap.dedent(TOY_PLUGIN))
    info = tmp_path / "toy_signals-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-signals\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[maeflow]\ntoy_signals = toy_signals\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.reset()
    yield
    plugins.reset()


def test_third_party_modality_through_an_entry_point(fake_distribution):
    assert "toy_signal_test" in maeflow.list_models("toy_*")
    assert maeflow.registry("model").entry("toy_signal_test").plugin == "toy_signals"
    model = maeflow.create_model("toy_signal_test", channels=3)
    from maeflow.testing import check_model

    check_model(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = model.tokenizer.example_inputs(4, generator=torch.Generator().manual_seed(0))
    before = [p.detach().clone() for p in model.parameters()]
    loss = model(x).loss
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    rows = {r["name"]: r for r in plugins.plugin_summary()}
    assert rows["toy_signals"]["distribution"] == "toy-signals 0.1"
    assert rows["toy_signals"]["components"] == {"model": ["toy_signal_test"], "tokenizer": ["window1d"]}


def test_plugins_can_be_disabled_by_name(fake_distribution, monkeypatch):
    monkeypatch.setenv("MAEFLOW_DISABLE_PLUGINS", "toy_signals, maeflow_image")
    plugins.reset()
    assert maeflow.list_models("toy_*") == [] and maeflow.list_models("mae_*") == []
    with pytest.raises(ValueError, match="unknown model 'toy_signal_test'"):
        maeflow.create_model("toy_signal_test")
    disabled = {r["name"] for r in plugins.plugin_summary() if r.get("disabled")}
    assert disabled == {"toy_signals", "maeflow_image"}


def test_a_broken_plugin_is_reported_and_skipped(tmp_path, monkeypatch, caplog):
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('boom')\n")
    info = tmp_path / "broken_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[maeflow]\nbroken = broken_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.reset()
    try:
        with caplog.at_level("WARNING"):
            assert "mae_vit_test" in maeflow.list_models()  # the others still load
        assert "broken" in caplog.text and "boom" in caplog.text
        row = next(r for r in plugins.plugin_summary() if r["name"] == "broken")
        assert "boom" in row["error"]
    finally:
        plugins.reset()


def test_plugins_registered_by_hand_without_entry_points():
    class Plugin:
        @maeflow.hookimpl
        def maeflow_register(self, registry):
            registry.loss("l1_masked", lambda: None)

    try:
        plugins.setup(load_entrypoints=False, plugins={"mine": Plugin()})
        assert maeflow.registry("loss").names() == ["l1_masked", "mse"]
        assert maeflow.list_models() == []  # no entry points: the image plugin is not loaded
    finally:
        plugins.reset()


def test_registry_errors():
    reg = Registry("masker")
    reg.add("random", object, plugin="a")
    with pytest.raises(ValueError, match="already registered by plugin 'a'"):
        reg.add("random", int, plugin="b")
    reg.add("random", int, plugin="b", override=True)
    with pytest.raises(ValueError, match="unknown masker 'tube'. Valid names: random"):
        reg.get("tube")
    with pytest.raises(ValueError, match="unknown component kind 'modle'.*did you mean 'model'"):
        maeflow.registry("modle")


def test_the_hookspec_is_documented_and_prefixed():
    import inspect

    from maeflow import hookspecs

    specs = [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "maeflow_spec")]
    assert specs == ["maeflow_register"]
    assert all(n.startswith("maeflow_") for n in specs)
    doc = inspect.getdoc(maeflow_register)
    assert ":param registry:" in doc and ":return:" in doc
    assert list(inspect.signature(maeflow_register).parameters) == ["registry"]


REPO = Path(__file__).resolve().parents[2]


def test_every_demo_ships_its_config_as_package_data():
    from importlib.resources import files

    from maeflow.config import check_registered, load_config

    demos = maeflow.registry("demo")
    assert {"image", "video", "audio", "pointcloud"} <= set(demos.names())
    for entry in demos.entries():
        shipped = Path(str(entry.obj.config))
        package = Path(str(files(entry.plugin)))
        assert package in shipped.parents, f"demo {entry.name!r} is not package data of {entry.plugin}"
        # configs/<name>/demo.yaml is the documented copy of the same file: one text, two places
        documented = REPO / "configs" / entry.name / "demo.yaml"
        assert shipped.read_text() == documented.read_text(), (
            f"{shipped.relative_to(REPO)} and {documented.relative_to(REPO)} differ: edit one, copy it onto the other"
        )
        check_registered(load_config(shipped))
    assert [e.name for e in demos.entries() if e.obj.default] == ["image"]


# what registering the plugins and building their models must survive: no decoding library at all
WITHOUT_EXTRAS = """
import sys
for name in ("av", "soundfile", "torchaudio"):
    sys.modules[name] = None  # `import name` now fails as if it were not installed
import torch, maeflow
for preset in ("videomae_vit_test", "audiomae_vit_test"):
    model = maeflow.create_model(preset)
    model(model.tokenizer.example_inputs(2, generator=torch.Generator().manual_seed(0))).loss.backward()
print(sorted(r["name"] for r in maeflow.plugins.plugin_summary() if not r.get("error")))
"""


def test_plugins_register_and_build_models_without_their_extras():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "'maeflow_audio'" in out.stdout and "'maeflow_video'" in out.stdout
    assert "failed to load" not in out.stderr


def test_reading_files_without_an_extra_names_the_install_command(monkeypatch, tmp_path, capsys):
    import sys

    from maeflow.cli import main
    from maeflow_audio.data import audio_folder, synthetic_sounds
    from maeflow_video.data import read_clip, video_folder

    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(maeflow.MissingDependency, match=r"reading video files needs 'av', which is not installed: "
                                                       r"pip install 'maeflow\[video\]'"):  # fmt: skip
        video_folder(root=tmp_path, decoder="pyav")  # ("auto" reads with torchcodec where it loads)
    with pytest.raises(maeflow.MissingDependency, match=r"pip install 'maeflow\[video\]'"):
        read_clip(tmp_path / "clip.mp4")
    config = tmp_path / "video.yaml"
    data = f"{{name: video_folder, options: {{root: {tmp_path}, decoder: pyav}}}}"
    config.write_text(f"model: {{name: videomae_vit_test}}\ndata: {data}\nrun: {{output_dir: {tmp_path / 'run'}}}\n")
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("pip install 'maeflow[video]'") and len(err.splitlines()) == 1, err

    monkeypatch.setitem(sys.modules, "soundfile", None)
    with pytest.raises(maeflow.MissingDependency, match=r"reading audio files needs 'soundfile'.*maeflow\[audio\]"):
        audio_folder(root=tmp_path)
    monkeypatch.setitem(sys.modules, "torchaudio.compliance.kaldi", None)
    with pytest.raises(maeflow.MissingDependency, match=r"needs 'torchaudio', which is not installed.*\[audio\]"):
        synthetic_sounds(input_size=(64, 32))
