"""One matplotlib figure per rendered sample: inputs, targets and renderings side by side.

The pre-training models' ``predict`` attaches ``render_outputs`` to each data
sample (``NSMAE.predict``, ``MIM4D.predict``). :func:`render_figure` draws them
as one figure a person can read without the code: one row per picture
(masked input, target RGB, rendered RGB, target depth, rendered depth, and for
NS-MAE the BEV heights), cameras side by side and named under each row, the
depth rows in one colour map with a colour bar in metres, and a caption with
the iteration and the sample's render quality (PSNR, depth error).
:func:`figure_to_rgb` turns the figure into the H x W x 3 uint8 array that
mmengine's ``Visualizer.add_image`` passes to its backends.
"""
import math
from typing import Mapping, Optional, Sequence

import numpy as np

__all__ = ['render_figure', 'figure_to_rgb', 'DEPTH_CMAP']

#: Colour map of the depth rows (near = dark blue, far = red); pixels without
#: a value (target without LiDAR, 0 m) are drawn in :data:`_NO_VALUE`.
DEPTH_CMAP = 'turbo'
_NO_VALUE = (0.55, 0.55, 0.55)  # grey


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, 'detach'):
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def _side_by_side(views: np.ndarray) -> np.ndarray:
    """(N_cam, H, W[, 3]) -> (H, N_cam * W[, 3]), cameras left to right."""
    return np.concatenate(list(views), axis=1)


def _rgb_row(views) -> np.ndarray:
    """(N_cam, 3, H, W) colours in [0, 1] -> (H, N_cam * W, 3), clipped."""
    views = _to_numpy(views)
    if views.ndim != 4 or views.shape[1] != 3:
        raise ValueError(f'expected (N_cam, 3, H, W) colours, got shape {views.shape}')
    return np.clip(_side_by_side(views.transpose(0, 2, 3, 1)), 0.0, 1.0)


def _depth_row(views) -> np.ndarray:
    """(N_cam, H, W) metres -> (H, N_cam * W) metres; 0 (no value) becomes NaN."""
    views = _to_numpy(views)
    if views.ndim != 3:
        raise ValueError(f'expected (N_cam, H, W) depth, got shape {views.shape}')
    row = _side_by_side(views)
    return np.where(row > 0, row, np.nan)


def _format(value: Optional[float], unit: str, digits: int = 2) -> str:
    if value is None:
        return 'n/a'
    if math.isinf(value):
        return f'inf {unit}'
    return f'{value:.{digits}f} {unit}'


def render_figure(outputs: Mapping, cameras: Sequence[str], iteration: int,
                  psnr: Optional[float] = None, depth_abs_err: Optional[float] = None,
                  bev_height_abs_err: Optional[float] = None, title: str = '',
                  panel_height: float = 1.3):
    """Draw one sample's ``render_outputs`` as a labelled figure.

    Rows, when present in ``outputs``: ``masked input`` (``img_input``),
    ``target RGB`` (``rgb_target``), ``rendered RGB`` (``rgb``), ``target
    depth`` (``depth_target``, LiDAR), ``rendered depth`` (``depth``), and the
    BEV heights ``target BEV height`` / ``rendered BEV height``. Cameras are
    side by side, named under each image row. Both depth rows share one
    colour scale, 0 m to the largest target depth, with a colour bar in
    metres; pixels without a target (0) are grey. The BEV rows share a colour
    bar of heights in metres (cells without a target grey).

    Args:
        outputs (Mapping): ``render_outputs`` of one sample: ``img_input``
            (N_cam, 3, H, W), ``rgb`` / ``rgb_target`` (N_cam, 3, h, w) in
            [0, 1]; ``depth`` / ``depth_target`` (N_cam, h, w) metres along
            the optical axis (target 0 without LiDAR); ``bev_height`` /
            ``bev_target`` (H_bev, W_bev) metres, ``bev_valid`` bool.
            Tensors or arrays.
        cameras (Sequence[str]): Camera names, one per view (N_cam).
        iteration (int): Training iteration shown in the caption.
        psnr (float, optional): The sample's PSNR in dB.
        depth_abs_err (float, optional): The sample's mean absolute depth
            error in metres over the pixels with LiDAR depth.
        bev_height_abs_err (float, optional): The same for the BEV heights.
        title (str): First words of the caption (e.g. ``'NS-MAE val sample
            0'``).
        panel_height (float): Height of one row in inches.

    Returns:
        matplotlib.figure.Figure: The figure (Agg canvas, not shown). Its
        suptitle holds ``title``, ``iter <iteration>``, the PSNR and the
        depth error; the x tick labels of each image row are the camera
        names.

    Raises:
        ValueError: If ``outputs`` has neither RGB, depth nor BEV heights, or
            the number of camera names differs from the number of views.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = []  # (label, kind, data)
    for key, label in (('img_input', 'masked input'), ('rgb_target', 'target RGB'),
                       ('rgb', 'rendered RGB')):
        if key in outputs:
            rows.append((label, 'rgb', _rgb_row(outputs[key]), _to_numpy(outputs[key]).shape[0]))
    depth_max = None
    for key, label in (('depth_target', 'target depth (LiDAR)'), ('depth', 'rendered depth')):
        if key in outputs:
            row = _depth_row(outputs[key])
            rows.append((label, 'depth', row, _to_numpy(outputs[key]).shape[0]))
    if 'depth_target' in outputs:
        target = _to_numpy(outputs['depth_target'])
        depth_max = float(target.max()) if (target > 0).any() else None
    if depth_max is None and 'depth' in outputs:
        depth_max = float(np.nanmax(_to_numpy(outputs['depth']))) if _to_numpy(
            outputs['depth']).size else None
    depth_max = max(depth_max or 1.0, 1e-3)
    bev_range = None
    if 'bev_height' in outputs and 'bev_target' in outputs:
        valid = _to_numpy(outputs['bev_valid']) > 0 if 'bev_valid' in outputs else None
        target = _to_numpy(outputs['bev_target'])
        target = np.where(valid, target, np.nan) if valid is not None else target
        rendered = _to_numpy(outputs['bev_height'])
        rows.append(('target BEV height', 'bev', target, 1))
        rows.append(('rendered BEV height', 'bev', rendered, 1))
        finite = target[np.isfinite(target)]
        bev_range = ((float(finite.min()), float(finite.max())) if finite.size else
                     (float(np.nanmin(rendered)), float(np.nanmax(rendered))))
        if bev_range[1] - bev_range[0] < 1e-3:
            bev_range = (bev_range[0] - 0.5, bev_range[1] + 0.5)
    if not rows:
        raise ValueError('render_figure: outputs hold no rgb, depth or bev_height '
                         f'(keys: {sorted(outputs.keys())})')
    num_views = {n for _, kind, _, n in rows if kind != 'bev'}
    if num_views and num_views != {len(cameras)}:
        raise ValueError(f'render_figure: {len(cameras)} camera names {list(cameras)} for '
                         f'{sorted(num_views)} views')

    widths = [data.shape[1] / data.shape[0] for _, _, data, _ in rows]
    fig_w = min(max(6.0, panel_height * max(widths) + 2.0), 16.0)
    fig = Figure(figsize=(fig_w, panel_height * len(rows) + 1.0), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    import matplotlib
    cmap = matplotlib.colormaps[DEPTH_CMAP].with_extremes(bad=_NO_VALUE)
    depth_image = bev_image = None
    for ax, (label, kind, data, views) in zip(axes, rows):
        if kind == 'rgb':
            ax.imshow(data, interpolation='nearest')
        elif kind == 'depth':
            depth_image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=0.0,
                                    vmax=depth_max, interpolation='nearest')
        else:
            bev_image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=bev_range[0],
                                  vmax=bev_range[1], interpolation='nearest', origin='lower')
        ax.set_ylabel(label, fontsize=8, rotation=0, ha='right', va='center')
        ax.set_yticks([])
        if kind == 'bev':
            ax.set_xticks([])
        else:
            width = data.shape[1] / views
            ax.set_xticks([(i + 0.5) * width - 0.5 for i in range(views)])
            ax.set_xticklabels(list(cameras), fontsize=7)
            for i in range(1, views):
                ax.axvline(i * width - 0.5, color='white', linewidth=0.8)
    depth_axes = [ax for ax, row in zip(axes, rows) if row[1] == 'depth']
    if depth_image is not None:
        bar = fig.colorbar(depth_image, ax=depth_axes, fraction=0.03, pad=0.01)
        bar.set_label('depth (m)', fontsize=8)
        bar.ax.tick_params(labelsize=7)
    if bev_image is not None:
        bar = fig.colorbar(bev_image, ax=[ax for ax, row in zip(axes, rows) if row[1] == 'bev'],
                           fraction=0.03, pad=0.01)
        bar.set_label('height (m)', fontsize=8)
        bar.ax.tick_params(labelsize=7)
    caption = [title] if title else []
    caption.append(f'iter {int(iteration)}')
    if psnr is not None:
        caption.append(f'PSNR {_format(psnr, "dB")}')
    if depth_abs_err is not None:
        caption.append(f'depth abs err {_format(depth_abs_err, "m", 3)}')
    if bev_height_abs_err is not None:
        caption.append(f'BEV height abs err {_format(bev_height_abs_err, "m", 3)}')
    fig.suptitle(' | '.join(caption), fontsize=9)
    return fig


def figure_to_rgb(fig) -> np.ndarray:
    """Render a matplotlib figure (Agg) into an H x W x 3 uint8 RGB array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[..., :3])
