"""VideoMAE presets: the published geometry, conformance of every test preset, the k-bias
equivalence behind loading VideoMAE's separate q/v biases into a fused qkv bias."""

import pytest
import torch

import maeflow
from maeflow.testing import check_model
from maeflow_video import ChannelPatchNormalizer, SpacetimeMasker, TubeMasker

VIDEO_TEST_MODELS = maeflow.list_models("videomae*_test")


def test_video_test_presets_are_registered():
    assert {"videomae_vit_test", "videomae_vit_spacetime_test"} <= set(VIDEO_TEST_MODELS)


@pytest.mark.parametrize("name", VIDEO_TEST_MODELS)
def test_video_test_presets_conform(name):
    model = maeflow.create_model(name)
    assert model.modality == "video"
    check_model(model)


def test_test_presets_use_the_video_components():
    tube = maeflow.create_model("videomae_vit_test")
    assert isinstance(tube.masker, TubeMasker)
    # small presets learn image-MAE targets (benchmarks/video_target_control.py); VideoMAE's stay per channel
    assert isinstance(tube.target_normalizer, maeflow.PatchNormalizer)
    assert isinstance(maeflow.create_model("videomae_vit_test", target_norm="channel_patch_norm").target_normalizer,
                      ChannelPatchNormalizer)  # fmt: skip
    assert tube.tokenizer.layout == (4, 4, 4) and tube.encoder.cls_token is None
    spacetime = maeflow.create_model("videomae_vit_spacetime_test")
    assert isinstance(spacetime.masker, SpacetimeMasker)
    out = tube(tube.tokenizer.example_inputs(2), generator=torch.Generator().manual_seed(0))
    assert out.mask_info.num_visible == 4 * (16 - int(0.9 * 16))


def test_videomae_base_geometry():
    model = maeflow.create_model("videomae_vit_base_patch16")
    cfg = model.config
    assert (cfg.embed_dim, cfg.depth, cfg.num_heads) == (768, 12, 12)
    assert (cfg.decoder_embed_dim, cfg.decoder_depth, cfg.decoder_num_heads) == (384, 4, 6)
    assert (cfg.num_frames, cfg.img_size, cfg.mask_ratio, cfg.masker) == (16, 224, 0.9, "tube")
    assert model.encoder.cls_token is None and model.decoder.num_prefix_tokens == 0
    assert model.tokenizer.num_tokens == 1568 and model.decoder.pred.out_features == 1536
    assert model.decoder.embed.bias is None  # VideoMAE's encoder_to_decoder has no bias
    assert isinstance(model.target_normalizer, ChannelPatchNormalizer)  # the published recipe's targets
    assert len(model.encoder.blocks) == 12 and len(model.decoder.blocks) == 4
    n = sum(p.numel() for p in model.parameters())
    assert 94.0e6 < n < 94.5e6  # VideoMAE ViT-B pretraining model: 94.2M


def test_no_cls_token_means_mean_pooled_features():
    model = maeflow.create_model("videomae_vit_test").eval()
    x = model.tokenizer.example_inputs(2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(x), model.encode(x).mean(dim=1))


def test_a_k_bias_changes_nothing_and_gets_no_gradient():
    model = maeflow.create_model("videomae_vit_test", attention="math").eval()
    x = model.tokenizer.example_inputs(2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model.encode(x)
        D = model.encoder.embed_dim
        for block in model.encoder.blocks:
            block.attn.qkv.bias[D : 2 * D] = torch.randn(D) * 3.0
        shifted = model.encode(x)
    torch.testing.assert_close(shifted, ref, atol=1e-5, rtol=1e-5)
    model.train()
    model(x, generator=torch.Generator().manual_seed(1)).loss.backward()
    for block in [*model.encoder.blocks, *model.decoder.blocks]:
        grad = block.attn.qkv.bias.grad
        d = grad.shape[0] // 3
        scale = max(1.0, grad[:d].abs().max().item(), grad[2 * d :].abs().max().item())
        assert grad[d : 2 * d].abs().max() < 1e-5 * scale
