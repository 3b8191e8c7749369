"""Hook that saves NS-MAE renderings (PNG + visualizer backends)."""
from typing import Dict

import numpy as np
import torch

from mmdet3d.registry import HOOKS
from projects.common.render_visualization_hook import RenderVisualizationHook
from render_pretrain.visualization.render_images import (cameras_side_by_side,
                                                         depth_to_uint8, rgb_to_uint8)


def render_outputs_to_images(outputs) -> Dict[str, np.ndarray]:
    """Tile the render outputs of one sample into named RGB images.

    Args:
        outputs (BaseDataElement): ``render_outputs`` of a predicted sample
            (see ``NSMAE.predict``).

    Returns:
        dict[str, np.ndarray]: H x W x 3 uint8 images: ``masked_input``,
        ``rendered_rgb``, ``target_rgb``, ``depth`` (rendered above LiDAR
        target) and ``bev_depth`` (rendered height above target height).
    """
    images = dict()
    if 'rgb' in outputs:
        row = cameras_side_by_side
        images['masked_input'] = rgb_to_uint8(row(outputs.img_input))
        images['rendered_rgb'] = rgb_to_uint8(row(outputs.rgb))
        images['target_rgb'] = rgb_to_uint8(row(outputs.rgb_target))
        far = float(outputs.depth_target.max().clamp_min(1.0))
        images['depth'] = np.concatenate([depth_to_uint8(row(outputs.depth), far),
                                          depth_to_uint8(row(outputs.depth_target), far)], axis=0)
    if 'bev_height' in outputs:
        # Heights (metres) shifted into [0.15, 1] (0 = no value) and drawn as
        # depth: the lowest surface brightest.
        target = outputs.bev_target
        low = float(target[outputs.bev_valid].min()) if bool(outputs.bev_valid.any()) else -5.0
        span = max(float(target.max()) - low, 1.0)
        shift = lambda h: torch.where(  # noqa: E731
            h != 0, (h - low) / span * 0.85 + 0.15, torch.zeros_like(h))
        rendered = shift(outputs.bev_height).clamp(0, 1)
        masked = shift(target) * outputs.bev_valid
        images['bev_depth'] = np.concatenate([depth_to_uint8(rendered, 1.0),
                                              depth_to_uint8(masked.clamp(0, 1), 1.0)], axis=0)
    return images


@HOOKS.register_module()
class NSMAERenderVisualizationHook(RenderVisualizationHook):
    """Save NS-MAE renderings at validation and every N training iterations.

    Pictures: masked input, rendered RGB, target RGB, rendered depth over
    LiDAR depth, BEV height rendered over target, in
    ``{work_dir}/nsmae_vis/`` and the visualizer backends. Renderings live at
    1/8 of the input resolution and are enlarged to ``min_height`` pixels.
    Arguments: see :class:`projects.common.render_visualization_hook.RenderVisualizationHook`.
    """

    folder = 'nsmae_vis'

    def images_of(self, outputs) -> Dict[str, np.ndarray]:
        return render_outputs_to_images(outputs)
