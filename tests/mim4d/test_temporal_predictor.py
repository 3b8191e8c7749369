"""MIM4DTemporalPredictor: both branches, invalid keys, shapes."""
import torch

import projects.MIM4D.mim4d  # noqa: F401
from projects.MIM4D.mim4d import MIM4DTemporalPredictor


def _inputs(num_frames=3, channels=8):
    torch.manual_seed(0)
    context = torch.randn(2, num_frames, channels, 2, 5, 6, requires_grad=True)
    valid = torch.ones(2, num_frames, 2, 5, 6, dtype=torch.bool)
    offsets = torch.tensor([[-0.5, -1.0, -1.5], [-1.0, -0.5, -1.5]])[:, :num_frames]
    return context, valid, offsets


def test_every_context_frame_reaches_the_prediction():
    predictor = MIM4DTemporalPredictor(channels=8, num_layers=2, num_heads=2, window=3)
    context, valid, offsets = _inputs()
    out = predictor(context, valid, offsets)
    assert out.shape == (2, 8, 2, 5, 6)
    (grad, ) = torch.autograd.grad(out.square().sum(), context)
    assert (grad.abs().flatten(2).sum(-1) > 0).all()
    # The query starts from the nearest frame: frame 0 for sample 0, frame 1 for sample 1.
    near_share = grad.abs().flatten(2).sum(-1)
    assert near_share[0, 0] > near_share[0, 2] and near_share[1, 1] > near_share[1, 2]


def test_voxels_without_valid_keys_stay_finite():
    predictor = MIM4DTemporalPredictor(channels=8, num_layers=2, num_heads=2, window=3)
    context, valid, offsets = _inputs()
    out = predictor(context, torch.zeros_like(valid), offsets)
    assert torch.isfinite(out).all()
    # masked keys are ignored: the long-term branch sees only the null token
    changed = context.detach().clone()
    changed[:, 2] += 10.0
    again = predictor(changed, torch.zeros_like(valid), offsets)
    assert torch.allclose(out, again, atol=1e-5)
