"""Held-out render quality of the pre-training models (PSNR, depth error)."""
import math
from typing import Dict, List, Optional, Sequence

from mmengine.evaluator import BaseMetric

from mmdet3d.registry import METRICS
from render_pretrain.render_metrics import masked_abs_error_sum, psnr_from_mse


@METRICS.register_module()
class RenderQualityMetric(BaseMetric):
    """PSNR of rendered RGB and mean absolute error of rendered depth.

    Reads the ``render_outputs`` that the ``predict`` of ``NSMAE`` and
    ``MIM4D`` attach to each data sample: ``rgb`` / ``rgb_target``
    (N_cam, 3, h, w) in [0, 1], ``depth`` / ``depth_target`` (N_cam, h, w)
    in metres (target 0 where no LiDAR point), and for NS-MAE
    ``bev_height`` / ``bev_target`` / ``bev_valid`` (H_bev, W_bev), metres.

    Reported (with the ``render`` prefix):

    - ``psnr``: mean over samples of ``10 log10(1 / MSE)`` in dB, the MSE
      over all cameras, pixels and channels of the sample;
    - ``depth_abs_err``: ``sum |d - d_hat| / count`` in metres over every
      pixel with LiDAR depth in the data set;
    - ``bev_height_abs_err``: the same over the BEV cells with a target.

    A key is left out when no sample provides it (e.g. LiDAR-only NS-MAE has
    no ``psnr``). A mis-projected target (wrong pixels for the LiDAR points
    or images) shows up as a low PSNR and a large depth error.

    Args:
        prefix (str): Prefix of the metric names. Defaults to ``'render'``.
        collect_device (str): Device for collecting results across ranks.
    """

    default_prefix = 'render'

    def __init__(self, prefix: Optional[str] = None, collect_device: str = 'cpu') -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep per-sample squared-error means and absolute-error sums."""
        for sample in data_samples:
            outputs = sample.get('render_outputs')
            if outputs is None:
                raise KeyError('RenderQualityMetric needs data samples with "render_outputs" '
                               '(the predict of NSMAE or MIM4D)')
            record = dict()
            if 'rgb' in outputs and 'rgb_target' in outputs:
                rgb, target = outputs['rgb'], outputs['rgb_target']
                record['mse'] = float(((rgb.double() - target.double())**2).mean())
            if 'depth' in outputs and 'depth_target' in outputs:
                target = outputs['depth_target']
                record['depth'] = masked_abs_error_sum(outputs['depth'], target, target > 0)
            if 'bev_height' in outputs and 'bev_valid' in outputs:
                record['bev'] = masked_abs_error_sum(outputs['bev_height'],
                                                     outputs['bev_target'], outputs['bev_valid'])
            self.results.append(record)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Pool the per-sample records (see the class docstring)."""
        metrics = dict()
        mses = [r['mse'] for r in results if 'mse' in r]
        if mses:
            metrics['psnr'] = sum(psnr_from_mse(m) for m in mses) / len(mses)
        for key, name in (('depth', 'depth_abs_err'), ('bev', 'bev_height_abs_err')):
            pairs = [r[key] for r in results if key in r]
            count = sum(c for _, c in pairs)
            if count:
                metrics[name] = sum(s for s, _ in pairs) / count
        if not metrics:
            raise ValueError('RenderQualityMetric: no sample had rendered RGB or depth')
        for name, value in metrics.items():
            if math.isnan(value):
                raise ValueError(f'RenderQualityMetric: {name} is NaN')
        return {name: float(value) for name, value in metrics.items()}
