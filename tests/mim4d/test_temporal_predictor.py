"""MIM4DTemporalPredictor (window and deformable attention): both branches, invalid keys,
shapes; DeformableTemporalAttention sampling geometry against direct indexing."""
import pytest
import torch

import projects.MIM4D.mim4d  # noqa: F401
from projects.MIM4D.mim4d import MIM4DTemporalPredictor
from projects.MIM4D.mim4d.temporal_predictor import DeformableTemporalAttention
from render_pretrain.volume_warping import voxel_centers

ATTENTIONS = ['window', 'deformable']


def _inputs(num_frames=3, channels=8):
    torch.manual_seed(0)
    context = torch.randn(2, num_frames, channels, 2, 5, 6, requires_grad=True)
    valid = torch.ones(2, num_frames, 2, 5, 6, dtype=torch.bool)
    offsets = torch.tensor([[-0.5, -1.0, -1.5], [-1.0, -0.5, -1.5]])[:, :num_frames]
    return context, valid, offsets


@pytest.mark.parametrize('attention', ATTENTIONS)
def test_every_context_frame_reaches_the_prediction(attention):
    predictor = MIM4DTemporalPredictor(channels=8, num_layers=2, num_heads=2, window=3,
                                       attention=attention)
    context, valid, offsets = _inputs()
    out = predictor(context, valid, offsets)
    assert out.shape == (2, 8, 2, 5, 6)
    (grad, ) = torch.autograd.grad(out.square().sum(), context)
    assert (grad.abs().flatten(2).sum(-1) > 0).all()
    # The query starts from the nearest frame: frame 0 for sample 0, frame 1 for sample 1.
    near_share = grad.abs().flatten(2).sum(-1)
    assert near_share[0, 0] > near_share[0, 2] and near_share[1, 1] > near_share[1, 2]


@pytest.mark.parametrize('attention', ATTENTIONS)
def test_voxels_without_valid_keys_stay_finite(attention):
    predictor = MIM4DTemporalPredictor(channels=8, num_layers=2, num_heads=2, window=3,
                                       attention=attention)
    context, valid, offsets = _inputs()
    out = predictor(context, torch.zeros_like(valid), offsets)
    assert torch.isfinite(out).all()
    # masked keys are ignored (window: only the null token is left; deformable: invalid
    # voxels are zeroed before sampling); frame 2 is never the nearest (query) frame
    changed = context.detach().clone()
    changed[:, 2] += 10.0
    again = predictor(changed, torch.zeros_like(valid), offsets)
    assert torch.allclose(out, again, atol=1e-5)


def test_deformable_predictor_trains_its_sampling_offsets():
    predictor = MIM4DTemporalPredictor(channels=8, num_layers=1, num_heads=2,
                                       attention='deformable', num_points=3)
    context, valid, offsets = _inputs()
    predictor(context, valid, offsets).square().sum().backward()
    layer = predictor.layers[0]
    for attn in (layer.attn_short, layer.attn_long):
        assert attn.sampling_offsets.weight.grad.abs().sum() > 0
        assert attn.attention_weights.weight.grad.abs().sum() > 0


def test_normalised_voxel_centres_match_grid_sample_convention():
    """The deformable attention's reference points: voxel_centers over the box [-1, 1]^3."""
    centres = voxel_centers(torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]), (2, 3, 4))
    centres = centres.reshape(-1, 3)
    assert centres.shape == (24, 3)
    # voxel (z, y, x) = (1, 2, 3) is row (1 * 3 + 2) * 4 + 3 = 23;
    # centres x = 7/4 - 1, y = 5/3 - 1, z = 3/2 - 1
    assert torch.allclose(centres[23], torch.tensor([0.75, 2 / 3, 0.5]))
    volume = torch.randn(1, 5, 2, 3, 4)
    sampled = torch.nn.functional.grid_sample(volume, centres.view(1, 24, 1, 1, 3),
                                              align_corners=False)
    assert torch.allclose(sampled.view(5, 24), volume.flatten(2)[0], atol=1e-6)


def _attention_with_offset(offset):
    torch.manual_seed(0)
    attn = DeformableTemporalAttention(channels=8, num_heads=2, num_points=2)
    with torch.no_grad():
        attn.sampling_offsets.bias.copy_(torch.tensor(offset, dtype=torch.float32).repeat(4))
    return attn


def test_deformable_zero_offsets_average_the_frames_at_each_voxel():
    """Zero offsets and the initial (uniform) weights: every point reads the query's own
    voxel, so the output is the mean over frames of the projected values there (zero where
    a frame's voxel is invalid)."""
    attn = _attention_with_offset([0.0, 0.0, 0.0])
    values = torch.randn(2, 3, 8, 2, 4, 5)
    valid = torch.rand(2, 3, 2, 4, 5) > 0.3
    query = torch.randn(2, 40, 8)
    out = attn(query, values, valid, torch.randn(2, 3, 8))
    flat = values.flatten(3).transpose(2, 3)  # (B, F, V, C)
    projected = (flat @ attn.value_proj.weight.t() + attn.value_proj.bias) \
        * valid.flatten(2).unsqueeze(-1)  # invalid voxels read as zero
    expected = attn.output_proj(projected.mean(1))
    assert torch.allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize('axis', [0, 1, 2])
def test_deformable_offset_of_one_voxel_reads_the_neighbour(axis):
    """An offset of +1 voxel along x, y or z reads the next voxel along that axis of the
    (Z, Y, X) grid; beyond the last voxel it reads zeros (the projected volume's padding)."""
    offset = [0.0, 0.0, 0.0]
    offset[axis] = 1.0
    attn = _attention_with_offset(offset)
    values = torch.randn(1, 1, 8, 3, 4, 5)
    valid = torch.ones(1, 1, 3, 4, 5, dtype=torch.bool)
    out = attn(torch.randn(1, 60, 8), values, valid, torch.zeros(1, 1, 8)).view(3, 4, 5, 8)
    projected = values[0, 0].permute(1, 2, 3, 0) @ attn.value_proj.weight.t() \
        + attn.value_proj.bias  # (Z, Y, X, C)
    dim = 2 - axis  # x -> X (dim 2), y -> Y (dim 1), z -> Z (dim 0)
    shifted = torch.cat([projected.narrow(dim, 1, projected.shape[dim] - 1),
                         torch.zeros_like(projected.narrow(dim, 0, 1))], dim=dim)
    assert torch.allclose(out, attn.output_proj(shifted), atol=1e-5)
