"""Hook that saves MIM4D renderings of the target frame next to the ground truth."""
from typing import Dict

import numpy as np

from mmdet3d.registry import HOOKS
from projects.common.render_visualization_hook import RenderVisualizationHook
from render_pretrain.visualization.render_images import (cameras_side_by_side,
                                                         depth_to_uint8, rgb_to_uint8)


def render_outputs_to_images(outputs) -> Dict[str, np.ndarray]:
    """Tile the ``render_outputs`` of one sample (cameras side by side).

    Args:
        outputs (BaseDataElement): ``render_outputs`` of ``MIM4D.predict``.

    Returns:
        dict[str, np.ndarray]: RGB uint8 images ``rgb`` (rendered above
        ground truth) and ``depth`` (rendered above LiDAR depth).
    """
    row = cameras_side_by_side
    far = float(outputs.depth_target.max().clamp_min(1.0))
    return dict(
        rgb=np.concatenate([rgb_to_uint8(row(outputs.rgb)),
                            rgb_to_uint8(row(outputs.rgb_target))], axis=0),
        depth=np.concatenate([depth_to_uint8(row(outputs.depth), far),
                              depth_to_uint8(row(outputs.depth_target), far)], axis=0))


@HOOKS.register_module()
class MIM4DRenderVisualizationHook(RenderVisualizationHook):
    """Save rendered RGB / depth of the target frame next to the ground truth.

    Pictures (rendered on top, ground truth below, cameras side by side) in
    ``{work_dir}/mim4d_vis/`` and the visualizer backends; arguments: see
    :class:`projects.common.render_visualization_hook.RenderVisualizationHook`
    (``interval=0``: only the first validation batch).
    """

    folder = 'mim4d_vis'

    def images_of(self, outputs) -> Dict[str, np.ndarray]:
        return render_outputs_to_images(outputs)
