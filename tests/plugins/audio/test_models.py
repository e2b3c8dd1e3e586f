"""Every audio preset: conformance of the tiny ones, the published settings of the full one."""

import pytest
import torch

import maeflow
from maeflow.testing import check_model
from maeflow_audio import AudioMAEConfig, TimeFrequencyMasker


@pytest.mark.parametrize("name", maeflow.list_models("audiomae_*_test"))
def test_conformance(name):
    model = maeflow.create_model(name)
    assert model.modality == "audio"
    check_model(model)


def test_test_presets_cover_each_option():
    names = maeflow.list_models("audiomae_*_test")
    assert {"audiomae_vit_test", "audiomae_vit_local_test", "audiomae_vit_timefreq_test"} <= set(names)
    assert isinstance(maeflow.create_model("audiomae_vit_timefreq_test").masker, TimeFrequencyMasker)


def test_base_preset_settings():
    cfg = AudioMAEConfig()
    assert cfg.input_size == (1024, 128) and cfg.patch_size == 16 and cfg.mask_ratio == 0.8
    assert (cfg.embed_dim, cfg.depth, cfg.num_heads) == (768, 12, 12)
    assert (cfg.decoder_embed_dim, cfg.decoder_depth, cfg.decoder_num_heads) == (512, 8, 16)
    assert cfg.decoder_attention == "global" and cfg.norm_pix_loss


@pytest.mark.slow
def test_base_preset_forward():
    model = maeflow.create_model("audiomae_vit_base_patch16")
    out = model(torch.randn(1, 1, 1024, 128), generator=torch.Generator().manual_seed(0))
    assert out.mask_info.num_visible == 102 and out.pred.shape == (1, 512, 256)
    assert out.latent.shape == (1, 103, 768)


def test_mask_ratio_and_masker_options():
    model = maeflow.create_model("audiomae_vit_test", masker="time_freq", mask_time_ratio=0.5, mask_freq_ratio=0.25)
    out = model(torch.randn(2, 1, 64, 32))
    assert out.mask_info.num_visible == 4 * 3  # 8 x 4 grid
    with pytest.raises(ValueError, match="time_freq"):
        maeflow.create_model("audiomae_vit_test", mask_time_ratio=0.5)
    with pytest.raises(ValueError, match="option"):
        maeflow.create_model("audiomae_vit_test", img_size=64)


def test_silent_and_empty_clips_give_a_finite_loss():
    from maeflow_audio import AudioFrontend

    model = maeflow.create_model("audiomae_vit_test")
    fe = AudioFrontend(num_mel_bins=32, target_frames=64)
    x = torch.cat([fe(torch.zeros(1, 16000)), fe(torch.zeros(1, 0))])  # constant spectrograms
    out = model(x)
    assert torch.isfinite(out.loss) and torch.isfinite(out.pred).all()
    out.loss.backward()
