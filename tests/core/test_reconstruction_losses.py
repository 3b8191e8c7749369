import doctest

import pytest
import torch

import render_pretrain.reconstruction_losses as reconstruction_losses_module
from render_pretrain.reconstruction_losses import masked_l1, masked_mse


def test_masked_means_hand_values(device):
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)
    target = torch.tensor([[0.0, 0.0], [7.0, float('nan')]], device=device)  # NaN where invalid
    mask = torch.tensor([[True, False], [True, False]], device=device)
    assert masked_l1(pred, target, mask).item() == pytest.approx((1 + 4) / 2)
    assert masked_mse(pred, target, mask).item() == pytest.approx((1 + 16) / 2)
    weight = torch.tensor([[3.0, 1.0], [1.0, 1.0]], device=device)
    assert masked_l1(pred, target, mask, weight).item() == pytest.approx((3 * 1 + 4) / 4)
    # no mask: plain mean; mask broadcast over channels counts every element
    assert masked_mse(pred, torch.zeros(2, 2, device=device)).item() == pytest.approx(30 / 4)
    rgb = torch.ones(2, 3, 2, 2, device=device)
    pix = torch.zeros(2, 1, 2, 2, dtype=torch.bool, device=device)
    pix[0, 0, 0, 0] = True
    assert masked_l1(rgb, torch.zeros_like(rgb), pix).item() == pytest.approx(1.0)


@pytest.mark.parametrize('loss_fn', [masked_l1, masked_mse])
def test_no_valid_element_gives_zero_and_finite_gradient(loss_fn, device):
    pred = torch.randn(3, 4, device=device, requires_grad=True)
    target = torch.full((3, 4), float('nan'), device=device)
    loss = loss_fn(pred, target, torch.zeros(3, 4, dtype=torch.bool, device=device))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(pred.grad, torch.zeros(3, 4, device=device))
    empty = torch.zeros(0, device=device, requires_grad=True)
    loss = loss_fn(empty, torch.zeros(0, device=device))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(empty.grad).all()


def test_loss_decreases_when_fitting(device):
    gen = torch.Generator().manual_seed(0)
    target = (torch.rand(64, generator=gen) * 10).to(device)
    mask = (torch.rand(64, generator=gen) < 0.3).to(device)
    pred = torch.zeros(64, device=device, requires_grad=True)
    # the L1 gradient of a valid element is sign / num_valid: steps of 0.25
    lr = 0.25 * float(mask.sum())
    losses = []
    for _ in range(60):
        loss = masked_l1(pred, target, mask)
        (grad, ) = torch.autograd.grad(loss, pred)
        with torch.no_grad():
            pred -= lr * grad
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    assert torch.equal(pred.detach()[~mask], torch.zeros(int((~mask).sum()), device=device))
    with pytest.raises(ValueError, match='shape'):
        masked_l1(pred, target[:3])


def test_docstring_examples():
    result = doctest.testmod(reconstruction_losses_module, extraglobs={'torch': torch})
    assert result.attempted > 0 and result.failed == 0
