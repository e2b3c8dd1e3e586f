"""A fine-tuned image classifier exports with its head: the same logits (1e-5, fp32 CPU) in
maeflow, timm's VisionTransformer and Hugging Face's ViTForImageClassification."""

import pytest
import torch

import maeflow
from maeflow.checkpoint import export_state_dict
from maeflow.downstream import Classifier, classifier_from_checkpoint
from maeflow.downstream.report import save_classifier
from maeflow_image.classifier_export import hf_config, timm_kwargs


def _classifier(pool, norm, seed=0):
    torch.manual_seed(seed)
    backbone = maeflow.create_model("mae_vit_test", in_chans=3)
    clf = Classifier(backbone, num_classes=5, pool=pool, norm=norm)
    with torch.no_grad():  # nothing left at a trivial value that could hide a wrong mapping
        for p in clf.parameters():
            p.add_(0.05 * torch.randn_like(p))
        if norm == "batchnorm":
            clf.head_norm.running_mean.normal_()
            clf.head_norm.running_var.uniform_(0.5, 2.0)
    return clf.eval()


def _timm(clf):
    from timm.models.vision_transformer import VisionTransformer

    m = VisionTransformer(**timm_kwargs(clf)).eval()
    m.load_state_dict(export_state_dict(clf, "timm"), strict=True)
    return m


@pytest.mark.parametrize(("pool", "norm"), [("avg", "fc_norm"), ("cls", "batchnorm"), ("cls", "fc_norm"),
                                            ("avg", "batchnorm")])  # fmt: skip
def test_timm_logits_match(pool, norm):
    clf = _classifier(pool, norm)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(_timm(clf)(x), clf(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm", ["batchnorm", "fc_norm", "none"])
def test_hf_logits_match(norm):
    from transformers import ViTForImageClassification

    clf = _classifier("cls", norm)
    hf = ViTForImageClassification(hf_config(clf)).eval()
    missing, unexpected = hf.load_state_dict(export_state_dict(clf, "hf"), strict=False)
    assert not unexpected and not [k for k in missing if "pooler" not in k]
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(hf(pixel_values=x).logits, clf(x), atol=1e-5, rtol=1e-5)


def test_hf_refuses_token_mean_classifier():
    with pytest.raises(ValueError, match="cls token"):
        export_state_dict(_classifier("avg", "fc_norm"), "hf")


def test_convert_cli_writes_timm_classifier(tmp_path):
    from safetensors.torch import load_file

    from maeflow.cli import main

    clf = _classifier("avg", "fc_norm")
    pt, _ = save_classifier(clf, tmp_path)
    again = classifier_from_checkpoint(pt)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(again(x), clf(x))
    out = tmp_path / "timm.safetensors"
    assert main(["convert", str(pt), "--to", "timm", "-o", str(out)]) == 0
    from timm.models.vision_transformer import VisionTransformer

    m = VisionTransformer(**timm_kwargs(clf)).eval()
    m.load_state_dict(load_file(str(out)), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(m(x), clf(x), atol=1e-5, rtol=1e-5)
