"""Windowed decoder attention: locality, shifted windows alternating, parity with global blocks."""

import pytest
import torch

import maeflow
from maeflow.nn import Block
from maeflow_audio import WindowedBlock
from maeflow_audio.attention import shifted_window_mask

GRID = (8, 4)  # (T', F')


def _block(shift=(0, 0), window=(2, 2), prefix=1):
    torch.manual_seed(0)
    return WindowedBlock(16, 2, GRID, window=window, shift=shift, attention="math", num_prefix_tokens=prefix).eval()


def _perturbed(block, x, t, f, prefix=1):
    """Outputs before and after changing grid token (t, f)."""
    y = x.clone()
    y[:, prefix + t * GRID[1] + f] += 5.0
    with torch.no_grad():
        return block(x)[:, prefix:].reshape(1, *GRID, -1), block(y)[:, prefix:].reshape(1, *GRID, -1)


def test_unshifted_window_is_local():
    block = _block()
    x = torch.randn(1, 1 + 32, 16)
    a, b = _perturbed(block, x, 3, 1)  # token in the window covering times 2–3, frequencies 0–1
    changed = (a - b).abs().amax(-1)[0] > 0  # (T', F')
    expected = torch.zeros(GRID, dtype=torch.bool)
    expected[2:4, 0:2] = True
    assert torch.equal(changed, expected)


def test_shifted_window_is_local_and_wraps_without_mixing():
    block = _block(shift=(1, 1))
    x = torch.randn(1, 1 + 32, 16)
    # shifted partition borders at 1, 3, 5, 7 (time) and 1, 3 (frequency): (3, 1) shares a window with (4, 2)
    a, b = _perturbed(block, x, 3, 1)
    changed = (a - b).abs().amax(-1)[0] > 0
    expected = torch.zeros(GRID, dtype=torch.bool)
    expected[3:5, 1:3] = True
    assert torch.equal(changed, expected)
    # a corner token sits alone in its edge region: the roll must not make it see the far side
    a, b = _perturbed(block, x, 0, 0)
    changed = (a - b).abs().amax(-1)[0] > 0
    expected = torch.zeros(GRID, dtype=torch.bool)
    expected[0, 0] = True
    assert torch.equal(changed, expected)


def test_prefix_token_is_isolated():
    block = _block(shift=(1, 1))
    x = torch.randn(1, 1 + 32, 16)
    y = x.clone()
    y[:, 0] += 5.0
    with torch.no_grad():
        assert torch.equal(block(x)[:, 1:], block(y)[:, 1:])
    without = _block(shift=(1, 1), prefix=0)
    without.load_state_dict(block.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(without(x[:, 1:]), block(x)[:, 1:])


def test_full_window_equals_a_global_block():
    torch.manual_seed(0)
    glob = Block(16, 2, attention="math").eval()
    local = WindowedBlock(16, 2, GRID, window=GRID, attention="math", num_prefix_tokens=0).eval()
    local.load_state_dict(glob.state_dict())  # same parameter names
    x = torch.randn(2, 32, 16)
    with torch.no_grad():
        torch.testing.assert_close(local(x), glob(x))


def test_shift_mask_regions():
    mask = shifted_window_mask((4, 4), (2, 2), (1, 1))
    assert mask.shape == (4, 4, 4)
    assert mask[0].all()  # an inner window is one region
    assert mask[3].sum() == 4  # the corner window holds four regions of one token each


def test_decoder_alternates_shifted_windows():
    model = maeflow.create_model("audiomae_vit_local_test", decoder_depth=4)
    shifts = [blk.shift for blk in model.decoder.blocks]
    assert shifts == [(0, 0), (1, 1), (0, 0), (1, 1)]
    assert all(isinstance(b, WindowedBlock) and b.window == (2, 2) for b in model.decoder.blocks)
    base = maeflow.create_model("audiomae_vit_base_patch16", decoder_attention="local", depth=1, decoder_depth=2)
    assert [b.shift for b in base.decoder.blocks] == [(0, 0), (2, 0)]  # Audio-MAE's 4x4 windows, shift (2, 0)
    assert base.decoder.blocks[1].grid == (64, 8)


def test_bad_windows_raise():
    with pytest.raises(ValueError, match="does not divide"):
        WindowedBlock(16, 2, GRID, window=(3, 2))
    with pytest.raises(ValueError, match="shift"):
        WindowedBlock(16, 2, GRID, window=(2, 2), shift=(2, 0))
    with pytest.raises(ValueError, match="decoder_attention"):
        maeflow.create_model("audiomae_vit_test", decoder_attention="swin")


def test_windowed_block_is_the_core_block_with_windowed_attention():
    """Same parameters and MLP branch as maeflow.nn.Block; only the attention branch differs."""
    local = _block()
    assert isinstance(local, Block)
    torch.manual_seed(0)
    plain = Block(16, 2, attention="math").eval()
    assert [k for k in local.state_dict()] == [k for k in plain.state_dict()]
    with pytest.raises(ValueError, match="own attention mask"):
        local(torch.randn(1, 33, 16), torch.ones(33, 33, dtype=torch.bool))
