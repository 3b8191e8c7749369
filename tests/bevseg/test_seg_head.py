"""BEVFusionSegHead: BEVFusion's parameter structure, losses, over-fitting."""
import pytest
import torch
import torch.nn.functional as F

import projects.BEVSeg.bevseg  # noqa: F401  (registers the modules)
from projects.BEVSeg.bevseg import BEVFusionSegHead
from render_pretrain.nuscenes_infos import BEV_MAP_CLASSES
from render_pretrain.segmentation_losses import sigmoid_focal_loss
from render_pretrain.segmentation_metrics import binary_confusion_counts, summarize_iou
from tests.bevseg.conftest import first_label

BEVFUSION_GRID = dict(input_scope=[[-51.2, 51.2, 0.8]] * 2, output_scope=[[-50, 50, 0.5]] * 2)
# mit-han-lab heads.map keys, relative to the head (Conv-BN-ReLU x2, Conv1x1)
BN = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
MIT_MAP_HEAD_KEYS = {'classifier.0.weight', 'classifier.3.weight', 'classifier.6.weight',
                     'classifier.6.bias'} | {f'classifier.{i}.{k}' for i in (1, 4) for k in BN}


def test_state_dict_is_bevfusions():
    head = BEVFusionSegHead(512, BEVFUSION_GRID, BEV_MAP_CLASSES)
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert set(shapes) == MIT_MAP_HEAD_KEYS  # the grid transform holds nothing
    assert shapes['classifier.0.weight'] == (512, 512, 3, 3)
    assert shapes['classifier.6.weight'] == (6, 512, 1, 1)
    small = BEVFusionSegHead(8, BEVFUSION_GRID, BEV_MAP_CLASSES).eval()
    out = small.predict(torch.randn(1, 8, 128, 128))
    assert out.shape == (1, 6, 200, 200) and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError, match='implies a'):
        small.predict(torch.randn(1, 8, 100, 100))


def test_losses_match_formulas():
    head = BEVFusionSegHead(4, dict(input_scope=[[-2, 2, 1.0]] * 2,
                                    output_scope=[[-2, 2, 1.0]] * 2), ['a', 'b'])
    logits = torch.randn(2, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    target = logits.detach() > 0.3
    focal = head.loss_by_logits(logits, target)
    assert set(focal) == {'loss_a', 'loss_b'}
    p = torch.sigmoid(logits[:, 1])
    t = target[:, 1].float()
    p_t = p * t + (1 - p) * (1 - t)
    assert focal['loss_b'].item() == pytest.approx((-(1 - p_t) ** 2 * p_t.log()).mean().item())
    head.loss_kind = 'xent'
    xent = head.loss_by_logits(logits, target)
    assert xent['loss_a'].item() == pytest.approx(
        F.binary_cross_entropy_with_logits(logits[:, 0], target[:, 0].float()).item())
    alpha = sigmoid_focal_loss(logits, target, alpha=0.25)
    assert alpha[target].mean() < sigmoid_focal_loss(logits, target)[target].mean()
    with pytest.raises(ValueError, match='do not match'):
        head.loss_by_logits(logits, target[:, :, :3])
    with pytest.raises(ValueError, match="'focal' or 'xent'"):
        BEVFusionSegHead(4, BEVFUSION_GRID, ['a'], loss='dice')


@pytest.mark.overfit
def test_overfits_one_synthetic_label(synthetic_infos):
    """The head alone learns one real synthetic label through the grid transform.

    Input: the label area-averaged to 1 m cells (what a good BEV decoder
    would encode) plus 10 noise channels; output: the 0.5 m label grid.
    stop_line (0.1 % of the cells, 0.5 m wide lines) is too thin to recover
    from 1 m cells and is not asserted.
    """
    label = torch.from_numpy(first_label(synthetic_infos)).unsqueeze(0)  # [1, 6, 200, 200]
    gen = torch.Generator().manual_seed(0)
    bev = torch.cat([F.avg_pool2d(label.float(), 2), torch.randn(1, 10, 100, 100, generator=gen)],
                    dim=1)
    torch.manual_seed(0)
    head = BEVFusionSegHead(16, dict(input_scope=[[-50, 50, 1.0]] * 2,
                                     output_scope=[[-50, 50, 0.5]] * 2), BEV_MAP_CLASSES)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    losses = []
    for _ in range(80):
        loss = sum(head.loss(bev, label).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    with torch.no_grad():
        probs = head.eval().predict(bev)
    metrics = summarize_iou(binary_confusion_counts(probs, label), BEV_MAP_CLASSES)
    cover = label.float().mean(dim=(0, 2, 3))
    for index, name in enumerate(BEV_MAP_CLASSES):
        if cover[index] > 0.01:
            assert metrics[f'{name}/iou@max'] > 0.8, (name, metrics)
