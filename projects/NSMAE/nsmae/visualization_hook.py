"""Hook that saves NS-MAE renderings (PNG + visualizer backends)."""
import os.path as osp
from typing import Dict, Optional, Sequence

import mmcv
import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet3d.registry import HOOKS


def _to_uint8_rgb(img: torch.Tensor) -> np.ndarray:
    """[3, H, W] in [0, 1] -> H x W x 3 uint8."""
    return (img.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).astype(
        np.uint8)


def _depth_to_uint8(depth: torch.Tensor, max_value: float) -> np.ndarray:
    """[H, W] metres (0 = empty) -> H x W x 3 uint8 (grey, black = empty)."""
    grey = (depth.clamp(0, max_value) / max(max_value, 1e-6)).cpu().numpy()
    grey = np.where(depth.cpu().numpy() > 0, 0.15 + 0.85 * (1 - grey), 0.0)
    return np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=2)


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
        row = lambda t: torch.cat(list(t), dim=-1)  # noqa: E731 cams side by side
        images['masked_input'] = _to_uint8_rgb(row(outputs.img_input))
        images['rendered_rgb'] = _to_uint8_rgb(row(outputs.rgb))
        images['target_rgb'] = _to_uint8_rgb(row(outputs.rgb_target))
        far = float(outputs.depth_target.max().clamp_min(1.0))
        images['depth'] = np.concatenate([
            _depth_to_uint8(row(outputs.depth), far),
            _depth_to_uint8(row(outputs.depth_target), far)
        ], axis=0)
    if 'bev_height' in outputs:
        target = outputs.bev_target
        low = float(target[outputs.bev_valid].min()) if bool(
            outputs.bev_valid.any()) else -5.0
        span = max(float(target.max()) - low, 1.0)
        shift = lambda h: torch.where(  # noqa: E731
            h != 0, (h - low) / span * 0.85 + 0.15, torch.zeros_like(h))
        rendered = shift(outputs.bev_height).clamp(0, 1)
        masked = shift(target) * outputs.bev_valid
        images['bev_depth'] = np.concatenate([
            _depth_to_uint8(rendered, 1.0),
            _depth_to_uint8(masked.clamp(0, 1), 1.0)
        ], axis=0)
    return images


@HOOKS.register_module()
class NSMAERenderVisualizationHook(Hook):
    """Save NS-MAE renderings at validation and every N training iterations.

    For each visualised sample it writes PNGs (masked input, rendered RGB,
    target RGB, rendered depth over LiDAR depth, BEV height rendered over
    target) to ``{work_dir}/nsmae_vis/`` and passes the same images to the
    runner's visualizer (``Visualizer.add_image``), i.e. to every enabled
    backend (local, TensorBoard, W&B).

    During training the batch is rendered with ``model.test_step`` in eval
    mode without gradients, then the model returns to train mode.

    Args:
        interval (int): Training iterations between two visualisations (0
            disables the training-time visualisation).
        max_samples (int): Samples visualised per batch.
        out_dir (str, optional): Output folder (default
            ``{work_dir}/nsmae_vis``).
        min_height (int): Renderings live at 1/8 of the input resolution
            (8 pixels high for a 64-pixel tiny config); images lower than this
            are enlarged by an integer nearest-neighbour factor so that every
            rendered cell stays visible as a block.
    """

    priority = 'LOW'

    def __init__(self,
                 interval: int = 1000,
                 max_samples: int = 1,
                 out_dir: Optional[str] = None,
                 min_height: int = 128) -> None:
        self.min_height = min_height
        self.interval = interval
        self.max_samples = max_samples
        self.out_dir = out_dir

    def _save(self, runner, samples: Sequence, tag: str, step: int) -> None:
        out_dir = self.out_dir or osp.join(runner.work_dir, 'nsmae_vis')
        for index, sample in enumerate(samples[:self.max_samples]):
            if 'render_outputs' not in sample:
                raise KeyError('NSMAERenderVisualizationHook needs data '
                               'samples with "render_outputs" (NSMAE.predict)')
            for name, image in render_outputs_to_images(
                    sample.render_outputs).items():
                factor = -(-self.min_height // image.shape[0])  # ceil
                if factor > 1:
                    image = image.repeat(factor, axis=0).repeat(factor, axis=1)
                mmcv.imwrite(image[..., ::-1],
                             osp.join(out_dir,
                                      f'{tag}_{step:07d}_{index}_{name}.png'))
                runner.visualizer.add_image(f'{tag}_{index}_{name}', image,
                                            step)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        """Render the current batch every ``interval`` iterations."""
        if self.interval <= 0 or not self.every_n_train_iters(
                runner, self.interval):
            return
        model = runner.model
        inner = model.module if is_model_wrapper(model) else model
        was_training = inner.training
        inner.eval()
        with torch.no_grad():
            samples = model.test_step(data_batch)
        inner.train(was_training)
        self._save(runner, samples, 'train', runner.iter + 1)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None,
                       outputs=None) -> None:
        """Save the renderings of the first validation batch."""
        if batch_idx == 0 and outputs:
            self._save(runner, outputs, 'val', runner.iter)
