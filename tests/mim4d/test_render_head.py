"""MIM4DNeuSRenderHead: collider, loss masks and finite empty cases."""
import torch

from projects.MIM4D.mim4d import MIM4DNeuSRenderHead
from render_pretrain.ray_generation import CameraRays


def _rays(origins, directions, depth, has_depth):
    num = origins.shape[0]
    return CameraRays(origins, directions, depth, depth, torch.zeros(num, 2),
                      torch.zeros(num, dtype=torch.long), torch.zeros(num, dtype=torch.long),
                      has_depth)


def test_depth_is_supervised_only_inside_the_box():
    torch.manual_seed(0)
    head = MIM4DNeuSRenderHead(in_channels=4, aabb=(-4.0, -4.0, -2.0, 4.0, 4.0, 2.0),
                               num_uniform=8, num_importance=4)
    volume = torch.randn(1, 4, 2, 4, 4)
    origins = torch.zeros(3, 3)
    directions = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    rays = _rays(origins, directions, torch.tensor([3.0, 10.0, 0.0]),
                 torch.tensor([True, True, False]))
    rendered = head(volume, rays.origins, rays.directions, rays.batch_idx)
    assert torch.allclose(rendered['far'], torch.full((3, ), 4.0))
    assert rendered['valid'].all()
    losses = head.loss(rendered, rays, torch.full((3, 3), 0.5))
    # ray 1 (10 m, beyond the 4 m box exit) and ray 2 (no LiDAR) do not count
    assert torch.allclose(losses['loss_depth'], 10 * (rendered['depth'][0] - 3.0).abs())
    assert torch.allclose(losses['loss_rgb'], 10 * (rendered['rgb'] - 0.5).abs().mean())


def test_rays_missing_the_box_give_zero_finite_losses():
    head = MIM4DNeuSRenderHead(in_channels=4, aabb=(-4.0, -4.0, -2.0, 4.0, 4.0, 2.0),
                               num_uniform=8, num_importance=4,
                               loss_weights=dict(eikonal=1.0))
    volume = torch.randn(1, 4, 2, 4, 4, requires_grad=True)
    origins = torch.tensor([[0.0, 0.0, 10.0]])  # above the box, looking up
    rays = _rays(origins, torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([5.0]),
                 torch.tensor([True]))
    rendered = head(volume, rays.origins, rays.directions, rays.batch_idx)
    assert not rendered['valid'].any()
    losses = head.loss(rendered, rays, torch.zeros(1, 3))
    assert all(v == 0 for v in losses.values())
    sum(losses.values()).backward()
    assert torch.isfinite(volume.grad).all()


def test_parallel_ray_chunks_give_the_same_losses_and_gradients():
    torch.manual_seed(3)
    kwargs = dict(in_channels=4, aabb=(-4.0, -4.0, -2.0, 4.0, 4.0, 2.0), num_uniform=8,
                  num_importance=4, loss_weights=dict(eikonal=0.1))
    # float64: the chunked sums differ from the serial ones only by rounding.
    serial = MIM4DNeuSRenderHead(**kwargs).double()
    parallel = MIM4DNeuSRenderHead(ray_chunk=7, ray_workers=2, **kwargs).double()
    parallel.load_state_dict(serial.state_dict())
    gen = torch.Generator().manual_seed(0)
    f64 = dict(generator=gen, dtype=torch.float64)
    volume = torch.randn(2, 4, 2, 4, 4, **f64, requires_grad=True)
    directions = torch.nn.functional.normalize(torch.randn(30, 3, **f64), dim=-1)
    rays = _rays(torch.zeros(30, 3, dtype=torch.float64), directions,
                 torch.rand(30, **f64) * 3 + 0.5, torch.rand(30, generator=gen) > 0.3)
    rays = rays._replace(batch_idx=torch.arange(30) % 2)
    target = torch.rand(30, 3, **f64)
    results = []
    for head in (serial, parallel):
        rendered = head(volume, rays.origins, rays.directions, rays.batch_idx)
        losses = head.loss(rendered, rays, target)
        params = list(head.field.parameters())
        grads = torch.autograd.grad(sum(losses.values()), [volume] + params)
        results.append((rendered, losses, grads))
    (r_a, l_a, g_a), (r_b, l_b, g_b) = results
    assert type(r_b['rgb'].grad_fn).__name__ == '_ParallelChunksBackward'
    for key in ('rgb', 'depth', 'weights', 'gradients'):
        torch.testing.assert_close(r_b[key], r_a[key])
    for key in l_a:
        torch.testing.assert_close(l_b[key], l_a[key])
    assert g_a[0].abs().max() > 0
    for ours, theirs in zip(g_b, g_a):
        torch.testing.assert_close(ours, theirs)
    # Without grad mode (visualisation) all rays are rendered at once.
    with torch.no_grad():
        torch.testing.assert_close(
            parallel(volume, rays.origins, rays.directions, rays.batch_idx)['rgb'], r_a['rgb'])
