"""Hook that saves MIM4D renderings of the target frame next to the ground truth."""
import os.path as osp
from typing import Dict, Optional, Sequence

import mmcv
import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet3d.registry import HOOKS


def _rgb_to_uint8(img: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] -> H x W x 3 uint8."""
    return (img.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8)


def _depth_to_uint8(depth: torch.Tensor, max_depth: float) -> np.ndarray:
    """(H, W) metres (0 = no value) -> H x W x 3 uint8, near = bright, empty = black."""
    value = depth.cpu().numpy()
    grey = 1.0 - np.clip(value / max(max_depth, 1e-6), 0.0, 1.0)
    grey = np.where(value > 0, 0.15 + 0.85 * grey, 0.0)
    return np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=2)


def render_outputs_to_images(outputs) -> Dict[str, np.ndarray]:
    """Tile the ``render_outputs`` of one sample (cameras side by side).

    Args:
        outputs (BaseDataElement): ``render_outputs`` of ``MIM4D.predict``.

    Returns:
        dict[str, np.ndarray]: RGB uint8 images ``rgb`` (rendered above
        ground truth) and ``depth`` (rendered above LiDAR depth).
    """
    row = lambda t: torch.cat(list(t), dim=-1)  # noqa: E731
    far = float(outputs.depth_target.max().clamp_min(1.0))
    return dict(
        rgb=np.concatenate([_rgb_to_uint8(row(outputs.rgb)),
                            _rgb_to_uint8(row(outputs.rgb_target))], axis=0),
        depth=np.concatenate([_depth_to_uint8(row(outputs.depth), far),
                              _depth_to_uint8(row(outputs.depth_target), far)], axis=0))


@HOOKS.register_module()
class MIM4DRenderVisualizationHook(Hook):
    """Save rendered RGB / depth of the target frame next to the ground truth.

    Writes ``{out_dir}/{tag}_{step}_{index}_{rgb|depth}.png`` (rendered on
    top, ground truth below, cameras side by side) and passes the same images
    to the runner's visualizer (``add_image``), i.e. to TensorBoard / W&B when
    such a backend is enabled in ``visualizer.vis_backends``. During training
    the batch is rendered with ``model.test_step`` in eval mode without
    gradients.

    Args:
        interval (int): Training iterations between visualisations (0: only
            the first validation batch).
        max_samples (int): Samples visualised per batch.
        out_dir (str, optional): Folder (default ``{work_dir}/mim4d_vis``).
    """

    priority = 'LOW'

    def __init__(self, interval: int = 1000, max_samples: int = 1,
                 out_dir: Optional[str] = None) -> None:
        self.interval = int(interval)
        self.max_samples = int(max_samples)
        self.out_dir = out_dir

    def _save(self, runner, samples: Sequence, tag: str, step: int) -> None:
        out_dir = self.out_dir or osp.join(runner.work_dir, 'mim4d_vis')
        for index, sample in enumerate(samples[:self.max_samples]):
            if 'render_outputs' not in sample:
                raise KeyError('MIM4DRenderVisualizationHook needs data samples with '
                               '"render_outputs" (MIM4D.predict)')
            for name, image in render_outputs_to_images(sample.render_outputs).items():
                mmcv.imwrite(image[..., ::-1],
                             osp.join(out_dir, f'{tag}_{step:07d}_{index}_{name}.png'))
                runner.visualizer.add_image(f'{tag}_{index}_{name}', image, step)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Render the current batch every ``interval`` iterations."""
        if self.interval <= 0 or not self.every_n_train_iters(runner, self.interval):
            return
        model = runner.model
        inner = model.module if is_model_wrapper(model) else model
        was_training = inner.training
        inner.eval()
        with torch.no_grad():
            samples = model.test_step(data_batch)
        inner.train(was_training)
        self._save(runner, samples, 'train', runner.iter + 1)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Save the renderings of the first validation batch."""
        if batch_idx == 0 and outputs:
            self._save(runner, outputs, 'val', runner.iter)
