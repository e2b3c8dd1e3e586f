"""Where the encoder comes from (run dir, maeflow checkpoint, foreign layout, none) and what the
classifier is made of."""

import pytest
import torch

import maeflow
from maeflow.checkpoint import export_state_dict, save_model, write_state_dict
from maeflow.downstream import Classifier, classifier_from_checkpoint, load_encoder
from maeflow.downstream.config import SourceConfig
from maeflow.downstream.report import save_classifier


def _model():
    torch.manual_seed(0)
    return maeflow.create_model("mae_vit_test")


def _same_encoder(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    keys = [k for k in sa if k.startswith(("tokenizer.", "encoder."))]
    assert keys and all(torch.equal(sa[k], sb[k]) for k in keys)


def test_from_a_run_dir_a_checkpoint_and_a_foreign_file(tmp_path):
    ref = _model()
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    save_model(ref, tmp_path / "run" / "checkpoints" / "last.pt")
    got, what = load_encoder(SourceConfig(source=str(tmp_path / "run")))
    _same_encoder(got, ref)
    assert "maeflow layout" in what
    write_state_dict(export_state_dict(ref, "mae"), tmp_path / "official.pth", wrap="model")  # MAE's own layout
    got, what = load_encoder(SourceConfig(source=str(tmp_path / "official.pth"), name="mae_vit_test"))
    _same_encoder(got, ref)
    assert "'mae'" in what or "mae layout" in what
    with pytest.raises(ValueError, match="model.name"):
        load_encoder(SourceConfig(source=str(tmp_path / "official.pth")))


def test_classifier_checkpoint_is_not_a_pretraining_source(tmp_path):
    pt, _ = save_classifier(Classifier(_model(), 3), tmp_path)
    with pytest.raises(ValueError, match="classifier"):
        load_encoder(SourceConfig(source=str(pt)))
    assert classifier_from_checkpoint(pt).num_classes == 3


def test_fc_norm_takes_the_final_norms_place_and_drop_path_is_set():
    clf = Classifier(_model(), 4, pool="avg", norm="fc_norm")
    assert isinstance(clf.encoder.norm, torch.nn.Identity) and isinstance(clf.head_norm, torch.nn.LayerNorm)
    assert not any(k.startswith("decoder") for k in clf.state_dict())
    probe = Classifier(_model(), 4, pool="cls", norm="batchnorm")
    assert isinstance(probe.encoder.norm, torch.nn.LayerNorm)
    model, _ = load_encoder(SourceConfig(name="mae_vit_test"), drop_path=0.1)
    rates = [getattr(b.drop_path, "p", 0.0) for b in model.encoder.blocks]
    assert rates == pytest.approx([0.0, 0.1])
    x = torch.randn(2, 3, 32, 32)
    assert Classifier(model, 4, pool="cls_max", norm="none")(x).shape == (2, 4)
