"""Hook that shows NS-MAE renderings through the runner's visualizer."""
from mmdet3d.registry import HOOKS
from projects.common.render_visualization_hook import RenderVisualizationHook


@HOOKS.register_module()
class NSMAERenderVisualizationHook(RenderVisualizationHook):
    """Show NS-MAE renderings at validation and every N training iterations.

    One figure per sample: masked input, target and rendered RGB, LiDAR and
    rendered depth (colour bar in metres), target and rendered BEV height,
    cameras named, iteration / PSNR / depth error in the caption; written
    by the visualizer's backends as ``nsmae_{train|val}_sample{i}_{iter}.png``
    under ``{work_dir}/{timestamp}/vis_data/vis_image/`` (local backend).
    Renderings live at 1/8 of the input resolution. Arguments: see
    :class:`projects.common.render_visualization_hook.RenderVisualizationHook`.
    """

    prefix = 'nsmae'
    model_name = 'NS-MAE'
