"""The training loop: accumulation, exact resumption, interruption, non-finite losses, bad input."""

import json

import pytest
import torch
from torch.utils.data import TensorDataset

import maeflow
from maeflow.runtime.state import list_checkpoints, read_checkpoint
from maeflow.train import NonFiniteLossError, Trainer
from maeflow.train.plan import batching

from .helpers import NoisyImages, run, settings, tiny_model


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_accumulation_equals_full_batch(tmp_path):
    data = NoisyImages(16)
    full = tiny_model()
    _, l_full = run(full, data, settings(tmp_path / "a", epochs=2, batch_size=8))
    accum = tiny_model()
    _, l_acc = run(accum, data, settings(tmp_path / "b", epochs=2, batch_size=4, accum_iter=2))
    assert len(l_full) == len(l_acc) == 4
    torch.testing.assert_close(torch.tensor(l_acc), torch.tensor(l_full), rtol=0, atol=1e-6)
    wa, wb = _weights(full), _weights(accum)
    # Adam normalizes each gradient, so a parameter whose true gradient is 0 (the key bias: softmax
    # ignores it) moves by ±lr on float rounding noise; compare everything else tightly
    for k in wa:
        if k.endswith("attn.qkv.bias"):
            continue
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-4, atol=1e-6, msg=k)


def test_effective_batch_size_sets_accumulation_and_lr(tmp_path):
    t = Trainer(tiny_model(), NoisyImages(16), **settings(tmp_path, batch_size=4, effective_batch_size=16,
                                                        base_lr=1.6e-3))  # fmt: skip
    t._setup()
    assert (t.plan.accum, t.plan.eff_batch, t.plan.steps_per_epoch) == (4, 16, 1)
    assert t.plan.peak_lr == pytest.approx(1.6e-3 * 16 / 256)
    with pytest.raises(ValueError, match="not a multiple of data.batch_size=4"):
        Trainer(tiny_model(), NoisyImages(16), **settings(tmp_path, batch_size=4, effective_batch_size=10))._setup()


def test_interrupt_and_resume_give_identical_losses(tmp_path):
    """Uninterrupted vs SIGTERM mid-epoch + resume=auto: the same per-step losses, exactly."""
    data = NoisyImages(24)  # 3 steps per epoch, 2 epochs
    _, reference = run(tiny_model(), data, settings(tmp_path / "ref"))
    assert len(reference) == 6

    out = tmp_path / "interrupted"
    first, l1 = run(tiny_model(), data, settings(out, ckpt_every_epochs=0), signal_at=2)
    assert first.interrupted == "SIGTERM" and first.global_step == 2
    assert [s for s, _ in list_checkpoints(out / "checkpoints")] == [2]
    # a different initialization proves the weights come from the checkpoint
    second, l2 = run(tiny_model(seed=99), data, settings(out, resume="auto"))
    assert second.interrupted is None and second.global_step == 6
    assert l1 + l2 == reference  # bit-for-bit on CPU

    ckpt = read_checkpoint(out / "checkpoints" / "last.pt")
    assert ckpt["progress"]["global_step"] == 6 and ckpt["scheduler"]["step_count"] == 6
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if r["type"] == "train"] == [1, 2, 3, 4, 5, 6]


def test_resume_at_epoch_boundary_and_keep_last(tmp_path):
    data = NoisyImages(16)  # 2 steps per epoch
    _, reference = run(tiny_model(), data, settings(tmp_path / "ref", epochs=3))
    out = tmp_path / "run"
    r1, l1 = run(tiny_model(), data, settings(out, epochs=3, keep_last=2), stop_at=4)
    assert r1.global_step == 4
    _, l2 = run(tiny_model(seed=5), data, settings(out, epochs=3, keep_last=2, resume="auto"))
    assert l1 + l2 == reference
    assert [s for s, _ in list_checkpoints(out / "checkpoints")] == [4, 6]


def test_checkpoint_is_a_maeflow_checkpoint(tmp_path):
    model = tiny_model()
    result, _ = run(model, NoisyImages(8), settings(tmp_path, epochs=1))
    raw = torch.load(result.checkpoint, weights_only=True)
    assert raw["format"] == "maeflow" and raw["model_name"] == "mae_vit_test"
    assert raw["config"] == {} and raw["progress"]["global_step"] == 1
    rebuilt, info = maeflow.model_from_checkpoint(result.checkpoint)
    assert not info.missing
    for k, v in model.state_dict().items():
        torch.testing.assert_close(rebuilt.state_dict()[k], v.cpu())


def test_nonfinite_loss_stops_without_writing_nan_checkpoint(tmp_path):
    data = NoisyImages(16, nan_at=3)
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 0.*train.nonfinite=skip"):
        run(tiny_model(), data, settings(tmp_path, epochs=1, shuffle=False, batch_size=4))
    assert list_checkpoints(tmp_path / "checkpoints") == []


def test_nonfinite_loss_skip_keeps_weights_finite(tmp_path):
    data = NoisyImages(16, nan_at=3)
    s = settings(tmp_path, epochs=2, shuffle=False, batch_size=4, nonfinite="skip")
    result, losses = run(tiny_model(), data, s)
    assert result.skipped_steps == 2  # the NaN sample, once per epoch
    assert sum(1 for x in losses if x != x) == 2
    state = read_checkpoint(result.checkpoint)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert state["progress"]["skipped_steps"] == 2


def test_too_many_skips_stop(tmp_path):
    data = NoisyImages(8, nan_at=0)
    with pytest.raises(NonFiniteLossError, match="max_skipped_steps=1"):
        run(tiny_model(), data, settings(tmp_path, epochs=4, batch_size=8, nonfinite="skip", max_skipped_steps=1))


def test_bad_input_messages(tmp_path):
    empty = TensorDataset(torch.zeros(0, 3, 32, 32), torch.zeros(0))
    with pytest.raises(ValueError, match="training dataset is empty"):
        Trainer(tiny_model(), empty, **settings(tmp_path))._setup()
    with pytest.raises(ValueError, match="has 4 samples, fewer than one effective batch of 8"):
        Trainer(tiny_model(), NoisyImages(4), **settings(tmp_path))._setup()
    s = settings(tmp_path, batch_size=7)
    with pytest.raises(ValueError, match="data.batch_size=7 is not divisible by the 2 processes"):
        batching(s["train"], s["data"].batch_size, world=2)
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        Trainer(tiny_model(), NoisyImages(16), **settings(tmp_path, precision="fp16", device="cpu"))._setup()
    with pytest.raises(ValueError, match="holds no trainer state"):
        maeflow.save_model(tiny_model(), tmp_path / "weights.pt")
        Trainer(tiny_model(), NoisyImages(16), **settings(tmp_path, resume=str(tmp_path / "weights.pt"))).fit()


def test_batch_mask_seeding_is_reproducible(tmp_path):
    s = dict(epochs=1, mask_seed="batch")
    _, a = run(tiny_model(), NoisyImages(16), settings(tmp_path / "a", **s))
    _, b = run(tiny_model(), NoisyImages(16), settings(tmp_path / "b", **s))
    assert a == b


def test_outputs_written(tmp_path):
    model = tiny_model()
    masker = model.masker
    calls = []

    def evaluator(m):
        calls.append(m.training)
        return {"knn_top1": 50.0, "linear_top1": 60.0}

    s = settings(tmp_path, epochs=2, reconstruction=True, eval_every_epochs=1, eval_final=True)
    result = Trainer(model, NoisyImages(8), **s, config={"model": {"name": "mae_vit_test"}}, evaluator=evaluator).fit()
    assert result.reconstruction is not None and result.reconstruction.stat().st_size > 0
    assert (tmp_path / "config.yaml").read_text().startswith("model:")
    assert (tmp_path / "checkpoints" / "last.pt").is_file()
    assert calls == [False, False]  # after epoch 1 and at the end (not twice after the last epoch), in eval mode
    assert result.eval == {"knn_top1": 50.0, "linear_top1": 60.0}
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert sum(r["type"] == "eval" for r in records) == 2
    assert model.masker is masker  # the model is never patched: mask seeds travel with the batch


def test_evaluator_is_told_which_evaluation_is_final(tmp_path):
    finals = []

    def evaluator(m, final):  # ProbeEvaluator's signature: it fine-tunes only when final
        finals.append(final)
        return {"knn_top1": 50.0, **({"finetune_top1": 70.0} if final else {})}

    s = settings(tmp_path, epochs=2, eval_every_epochs=1, eval_final=True)
    result = Trainer(tiny_model(), NoisyImages(8), **s, evaluator=evaluator).fit()
    assert finals == [False, True]
    assert result.eval == {"knn_top1": 50.0, "finetune_top1": 70.0}
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    evals = [(r["final"], "finetune_top1" in r) for r in records if r["type"] == "eval"]
    assert evals == [(False, False), (True, True)]


def test_bf16_autocast_on_cpu(tmp_path):
    result, losses = run(tiny_model(), NoisyImages(16), settings(tmp_path, epochs=1, precision="bf16",
                                                                 attention="math"))  # fmt: skip
    assert len(losses) == 2 and all(x == x for x in losses)
    state = read_checkpoint(result.checkpoint)
    assert state["model"]["encoder.cls_token"].dtype == torch.float32  # weights stay fp32 under autocast


@pytest.mark.slow
def test_compiled_model_trains_like_eager(tmp_path):
    _, eager = run(tiny_model(), NoisyImages(16), settings(tmp_path / "a", epochs=1))
    _, compiled = run(tiny_model(), NoisyImages(16), settings(tmp_path / "b", epochs=1, compile=True))
    torch.testing.assert_close(torch.tensor(compiled), torch.tensor(eager), rtol=1e-4, atol=1e-5)


def test_loader_workers_change_nothing_and_resume_exactly(tmp_path):
    """Items are seeded by (seed, epoch, position): 2 loader workers + an interruption give the
    losses of the single-process, worker-free, uninterrupted run."""
    data = NoisyImages(16)
    _, reference = run(tiny_model(), data, settings(tmp_path / "ref"))
    out = tmp_path / "workers"
    _, l1 = run(tiny_model(), data, settings(out, num_workers=2, ckpt_every_epochs=0), stop_at=1)
    _, l2 = run(tiny_model(seed=7), data, settings(out, num_workers=2, resume="auto"))
    assert l1 + l2 == reference


def test_attention_choices_go_to_the_run_log(tmp_path, monkeypatch):
    """What attention='auto' measured and chose per shape is written to metrics.jsonl, once."""
    import importlib

    A = importlib.import_module("maeflow.nn.attention")  # the module (maeflow.nn.attention is also a function)
    made = {}
    monkeypatch.setattr(A, "attention_choices", lambda: dict(made))

    def choose(trainer, record):  # a choice appears during the first step, another later
        if record["step"] == 1:
            made["CPU X, 1 thread: float32, N=50"] = "math"
        if record["step"] == 3:
            made["CPU X, 1 thread: float32, N=197"] = "sdpa"

    out = tmp_path / "run"
    t = Trainer(tiny_model(), NoisyImages(32), **settings(out, epochs=1, batch_size=8), callbacks=[choose])
    t.fit()
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in lines if r["type"] == "attention"]
    assert [r["choices"] for r in logged] == [
        {"CPU X, 1 thread: float32, N=50": "math"},
        {"CPU X, 1 thread: float32, N=197": "sdpa"},
    ]


def test_fused_adamw_is_the_default_on_cpu_and_can_be_switched_off(tmp_path):
    from maeflow.runtime import resolve_fused

    cpu = torch.device("cpu")
    assert resolve_fused("auto", cpu) is True and resolve_fused("auto", torch.device("cuda")) is True
    assert resolve_fused("auto", torch.device("mps")) is False and resolve_fused(False, cpu) is False
    with pytest.raises(ValueError, match="fused_optimizer"):
        resolve_fused("yes", cpu)
    t = Trainer(tiny_model(), NoisyImages(16), **settings(tmp_path / "a"))
    t._setup()
    assert t.optimizer.defaults["fused"] is True
    t = Trainer(tiny_model(), NoisyImages(16), **settings(tmp_path / "b", fused_optimizer=False))
    t._setup()
    assert not t.optimizer.defaults["fused"]


def test_trainer_logs_the_trivial_baseline_beside_the_loss(tmp_path):
    run(tiny_model(), NoisyImages(8), settings(tmp_path, epochs=1))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    baseline = [r for r in records if r["type"] == "baseline"]
    assert len(baseline) == 1 and baseline[0]["best"] > 0
    trains = [r for r in records if r["type"] == "train"]
    assert trains and all(r["trivial_loss"] == baseline[0]["best"] for r in trains)
