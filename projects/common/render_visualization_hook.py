"""Base of the hooks that show renderings next to their targets (via the runner visualizer)."""
import logging
import os.path as osp
from typing import Dict, List, Sequence

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from render_pretrain.visualization.render_figure import figure_to_rgb, render_figure


def camera_names_of(sample, num_views: int) -> List[str]:
    """Camera names of a data sample, one per rendered view.

    Read from the sample's ``camera_names`` meta key (MIM4D's sweep loader),
    else from the parent folder of each ``img_path`` (nuScenes keeps each
    camera's images in ``samples/CAM_FRONT/...``), else ``cam0``, ``cam1``...

    Args:
        sample (Det3DDataSample): A predicted sample.
        num_views (int): Views in its ``render_outputs`` (N_cam).

    Returns:
        list[str]: ``num_views`` names.
    """
    names = sample.metainfo.get('camera_names')
    if names is None:
        paths = sample.metainfo.get('img_path')
        if isinstance(paths, (list, tuple)) and paths and isinstance(paths[0], (list, tuple)):
            paths = paths[-1]  # MIM4D: per-sweep lists, the cameras are the same in each
        if isinstance(paths, (list, tuple)) and len(paths) == num_views:
            names = [osp.basename(osp.dirname(str(p))) or f'cam{i}' for i, p in enumerate(paths)]
    if names is None or len(names) != num_views:
        names = [f'cam{i}' for i in range(num_views)]
    return [str(n) for n in names]


def sample_render_quality(sample) -> Dict[str, float]:
    """The held-out render metric (:class:`RenderQualityMetric`) of one sample.

    Args:
        sample (Det3DDataSample): A predicted sample with ``render_outputs``.

    Returns:
        dict[str, float]: ``psnr`` (dB), ``depth_abs_err`` and
        ``bev_height_abs_err`` (metres), the keys the sample provides.
    """
    from projects.common.render_quality_metric import RenderQualityMetric
    metric = RenderQualityMetric()
    metric.process({}, [sample.to_dict()])
    if not metric.results[0]:
        return {}
    try:
        return metric.compute_metrics(metric.results)
    except ValueError:  # e.g. no pixel with LiDAR depth in this sample
        return {}


class RenderVisualizationHook(Hook):
    """Show the ``render_outputs`` of predicted samples, one figure per sample.

    For each visualised sample, :meth:`figure_of` draws one matplotlib
    figure (:func:`render_pretrain.visualization.render_figure.render_figure`:
    masked input, target and rendered RGB, target and rendered depth with a
    colour map and colour bar, camera names, and the iteration, PSNR and
    depth error of the sample, computed by the held-out render metric, in
    the caption). The figure goes to the runner's visualizer
    (``Visualizer.add_image(name, image, step)``) and nowhere else, i.e. to
    every enabled backend: ``LocalVisBackend`` writes
    ``{work_dir}/{timestamp}/vis_data/vis_image/{name}_{step}.png`` (a rerun
    gets a new timestamped folder), ``TensorboardVisBackend`` an image
    summary. Only the main process (rank 0) renders and writes.

    During training the batch is rendered with ``model.test_step`` in eval
    mode without gradients, then the model goes back to train mode; at
    validation the first batch is shown. ``name`` is
    ``{prefix}_{train|val}_sample{index}``.

    Subclasses set ``prefix`` and ``model_name``.

    Args:
        interval (int): Training iterations between two visualisations (0
            disables the training-time visualisation).
        max_samples (int): Samples visualised per batch.
    """

    priority = 'LOW'
    prefix = 'render'
    model_name = ''

    def __init__(self, interval: int = 1000, max_samples: int = 1) -> None:
        self.interval = int(interval)
        self.max_samples = int(max_samples)

    def before_run(self, runner) -> None:
        """Warn when the visualizer writes outside this run's timestamped folder.

        mmengine builds a visualizer by name (``Visualizer.get_instance``): a
        second runner in the same process whose config names the visualizer
        like the first (mmdet3d's ``name='visualizer'``) gets the first run's
        instance, and its images would land in (and overwrite) the first
        run's folder. Runs in separate processes are not affected; in one
        process, give each run its own ``visualizer.name``.
        """
        log_dir = osp.realpath(getattr(runner, 'log_dir', '') or '')
        for backend in getattr(runner.visualizer, '_vis_backends', {}).values():
            save_dir = getattr(backend, '_save_dir', None)
            if log_dir and save_dir and not osp.realpath(save_dir).startswith(log_dir):
                name = runner.visualizer.instance_name
                print_log(f'{type(self).__name__}: the visualizer {name!r} '
                          f'writes to {save_dir}, outside this run\'s folder {log_dir} (an earlier '
                          'run in this process built it): give each run its own visualizer.name',
                          logger='current', level=logging.WARNING)

    def figure_of(self, sample, tag: str, index: int, step: int):
        """The matplotlib figure of one predicted sample (see the class docstring).

        Args:
            sample (Det3DDataSample): With ``render_outputs``.
            tag (str): ``train`` or ``val``.
            index (int): Sample index in the batch.
            step (int): Iteration shown in the caption.

        Returns:
            matplotlib.figure.Figure: The figure.
        """
        if 'render_outputs' not in sample:
            raise KeyError(f'{type(self).__name__} needs data samples with '
                           '"render_outputs" (the pre-training model\'s predict)')
        outputs = sample.render_outputs.to_dict()
        views = next((int(outputs[k].shape[0]) for k in ('rgb', 'depth', 'img_input')
                      if k in outputs), 0)
        quality = sample_render_quality(sample)
        title = ' '.join(p for p in (self.model_name, tag, f'sample {index}') if p)
        return render_figure(outputs, camera_names_of(sample, views), step,
                             psnr=quality.get('psnr'),
                             depth_abs_err=quality.get('depth_abs_err'),
                             bev_height_abs_err=quality.get('bev_height_abs_err'),
                             title=title)

    def _show(self, runner, samples: Sequence, tag: str, step: int) -> None:
        for index, sample in enumerate(samples[:self.max_samples]):
            figure = self.figure_of(sample, tag, index, step)
            image = figure_to_rgb(figure)
            runner.visualizer.add_image(f'{self.prefix}_{tag}_sample{index}', image, step)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Render the current batch every ``interval`` iterations (main process only)."""
        if self.interval <= 0 or not self.every_n_train_iters(runner, self.interval):
            return
        if not is_main_process():
            return
        model = runner.model
        inner = model.module if is_model_wrapper(model) else model
        was_training = inner.training
        inner.eval()
        with torch.no_grad():
            samples = model.test_step(data_batch)
        inner.train(was_training)
        self._show(runner, samples, 'train', runner.iter + 1)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Show the renderings of the first validation batch (main process only)."""
        if batch_idx == 0 and outputs and is_main_process():
            self._show(runner, outputs, 'val', runner.iter)


__all__ = ['RenderVisualizationHook', 'camera_names_of', 'sample_render_quality']
