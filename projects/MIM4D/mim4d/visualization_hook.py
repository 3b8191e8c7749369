"""Hook that shows MIM4D renderings of the target frame next to the ground truth."""
from mmdet3d.registry import HOOKS
from projects.common.render_visualization_hook import RenderVisualizationHook


@HOOKS.register_module()
class MIM4DRenderVisualizationHook(RenderVisualizationHook):
    """Show rendered RGB / depth of the target frame next to the ground truth.

    One figure per sample (target and rendered RGB, LiDAR and rendered depth
    with a colour bar in metres, cameras named, iteration / PSNR / depth
    error in the caption), written by the visualizer's backends as
    ``mim4d_{train|val}_sample{i}_{iter}.png`` under
    ``{work_dir}/{timestamp}/vis_data/vis_image/`` (local backend); arguments:
    see :class:`projects.common.render_visualization_hook.RenderVisualizationHook`
    (``interval=0``: only the first validation batch).
    """

    prefix = 'mim4d'
    model_name = 'MIM4D'
