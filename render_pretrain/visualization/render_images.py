"""Turn rendered tensors into 8-bit pictures (renderings next to their targets)."""
import numpy as np
import torch
from torch import Tensor

__all__ = ['rgb_to_uint8', 'depth_to_uint8', 'cameras_side_by_side', 'enlarge_to_min_height']


def rgb_to_uint8(img: Tensor) -> np.ndarray:
    """(3, H, W) colours in [0, 1] (clamped) -> H x W x 3 uint8."""
    return (img.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8)


def depth_to_uint8(depth: Tensor, max_depth: float) -> np.ndarray:
    """(H, W) depth in metres (0 = no value) -> H x W x 3 uint8 grey.

    Near is bright: ``0.15 + 0.85 (1 - d / max_depth)`` (clipped), so that
    the farthest valid value stays distinguishable from "no value" (black).
    """
    value = depth.detach().cpu().numpy()
    grey = 1.0 - np.clip(value / max(float(max_depth), 1e-6), 0.0, 1.0)
    grey = np.where(value > 0, 0.15 + 0.85 * grey, 0.0)
    return np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=2)


def cameras_side_by_side(views: Tensor) -> Tensor:
    """(N_cam, ..., H, W) per-camera maps -> (..., H, N_cam * W), cameras left to right."""
    return torch.cat(list(views), dim=-1)


def enlarge_to_min_height(image: np.ndarray, min_height: int) -> np.ndarray:
    """Repeat pixels by the smallest integer factor that makes ``image`` >= ``min_height`` high.

    Renderings at 1/8 of the input resolution are a few pixels high in tiny
    configs; nearest-neighbour blocks keep every rendered cell visible.
    """
    factor = -(-int(min_height) // image.shape[0])  # ceil
    if factor <= 1:
        return image
    return image.repeat(factor, axis=0).repeat(factor, axis=1)
