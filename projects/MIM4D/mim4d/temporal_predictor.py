"""Temporal predictor: predict a withheld frame's volume from the other frames."""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from render_pretrain.volume_warping import voxel_centers


class _KeyAttention(nn.MultiheadAttention):
    """Multi-head attention of one query per row to its own keys (window form).

    ``forward(query (N, C), keys (N, K, C), invalid (N, K))``: keys are also
    the values; invalid keys are masked.
    """

    def __init__(self, channels: int, num_heads: int) -> None:
        super().__init__(channels, num_heads, batch_first=True)

    def forward(self, query: Tensor, keys: Tensor, invalid: Tensor) -> Tensor:
        out = super().forward(query.unsqueeze(1), keys, keys, key_padding_mask=invalid,
                              need_weights=False)[0]
        return out.squeeze(1)


class _PredictorLayer(nn.Module):
    """Short-term attention, long-term attention, FFN (pre-norm residuals)."""

    def __init__(self, channels: int, ffn_ratio: int, attn_short: nn.Module,
                 attn_long: nn.Module) -> None:
        super().__init__()
        self.norm_short = nn.LayerNorm(channels)
        self.attn_short = attn_short
        self.norm_long = nn.LayerNorm(channels)
        self.attn_long = attn_long
        self.norm_ffn = nn.LayerNorm(channels)
        self.ffn = nn.Sequential(nn.Linear(channels, channels * ffn_ratio), nn.GELU(),
                                 nn.Linear(channels * ffn_ratio, channels))

    def forward(self, query: Tensor, short: tuple, long: tuple) -> Tensor:
        query = query + self.attn_short(self.norm_short(query), *short)
        query = query + self.attn_long(self.norm_long(query), *long)
        return query + self.ffn(self.norm_ffn(query))


class DeformableTemporalAttention(nn.Module):
    """Multi-head deformable cross-attention from target voxels to context volumes.

    Deformable DETR's attention in 3D, over frames instead of feature
    levels: every query (a target voxel) predicts, per head, ``num_points``
    sampling offsets (voxel units, x / y / z) around its own centre in each
    context frame and one attention weight per (frame, point), normalised
    over all frames and points of the head. The (value-projected) context
    volumes are sampled there by trilinear interpolation
    (``F.grid_sample``, zeros outside the grid; invalid voxels of a warped
    frame are zeroed after the value projection) and the weighted samples
    are summed. The query
    of frame ``f`` is the voxel query plus that frame's time embedding, so
    offsets and weights depend on the time offset.

    Initialisation as Deformable DETR: offsets start on a per-head ray in
    the (x, y) plane at 1 ... ``num_points`` voxels, weights uniform.

    Args:
        channels (int): C, query / value channels.
        num_heads (int): Heads (must divide C).
        num_points (int): Sampling points per head and frame.
    """

    def __init__(self, channels: int, num_heads: int, num_points: int) -> None:
        super().__init__()
        if channels % num_heads:
            raise ValueError(f'num_heads={num_heads} must divide channels={channels}')
        self.channels, self.num_heads, self.num_points = channels, num_heads, num_points
        self.value_proj = nn.Linear(channels, channels)
        self.sampling_offsets = nn.Linear(channels, num_heads * num_points * 3)
        self.attention_weights = nn.Linear(channels, num_heads * num_points)
        self.output_proj = nn.Linear(channels, channels)
        self.init_weights()

    def init_weights(self) -> None:
        """Offsets on per-head rays in the (x, y) plane, uniform weights."""
        nn.init.zeros_(self.sampling_offsets.weight)
        angle = torch.arange(self.num_heads, dtype=torch.float32) * (2 * math.pi / self.num_heads)
        ray = torch.stack([angle.cos(), angle.sin(), torch.zeros_like(angle)], -1)
        ray = ray / ray.abs().max(-1, keepdim=True).values
        steps = torch.arange(1, self.num_points + 1, dtype=torch.float32)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_((ray[:, None] * steps[None, :, None]).flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for layer in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, query: Tensor, values: Tensor, valid: Tensor, time: Tensor) -> Tensor:
        """Attend from every voxel query to the context frames.

        Args:
            query (Tensor): (B, V, C) queries, V = Z * Y * X voxels (z-major).
            values (Tensor): (B, F, C, Z, Y, X) context volumes (target frame).
            valid (Tensor): (B, F, Z, Y, X) bool, voxels holding data.
            time (Tensor): (B, F, C) time embedding of each frame.

        Returns:
            Tensor: (B, V, C) attended features (after the output projection).
        """
        bsz, frames, chans = values.shape[:3]
        spatial = values.shape[3:]
        num_vox = query.shape[1]
        heads, points = self.num_heads, self.num_points
        head_dim = chans // heads
        frame_query = query.unsqueeze(1) + time.unsqueeze(2)  # (B, F, V, C)
        offsets = self.sampling_offsets(frame_query).view(bsz, frames, num_vox, heads, points, 3)
        logits = self.attention_weights(frame_query).view(bsz, frames, num_vox, heads, points)
        weights = logits.permute(0, 2, 3, 1, 4).reshape(bsz, num_vox, heads, frames * points)
        weights = weights.softmax(-1)
        # Invalid voxels read as zero after the projection, like samples outside the grid.
        value = self.value_proj(values.movedim(2, -1)) * valid.unsqueeze(-1).to(values.dtype)
        value = value.movedim(-1, 2)
        value = value.reshape(bsz * frames * heads, head_dim, *spatial)
        # Voxel offsets -> normalised offsets: 2 / N per axis (x, y, z).
        scale = values.new_tensor([2.0 / spatial[2], 2.0 / spatial[1], 2.0 / spatial[0]])
        # Voxel centres in normalised coordinates: a grid tiling the box [-1, 1]^3.
        centres = voxel_centers(values.new_tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]), spatial)
        grid = centres.view(1, 1, num_vox, 1, 1, 3) + offsets * scale
        grid = grid.permute(0, 1, 3, 2, 4, 5).reshape(bsz * frames * heads, num_vox, points, 1, 3)
        sampled = F.grid_sample(value, grid, mode='bilinear', padding_mode='zeros',
                                align_corners=False)  # (B F H, D, V, P, 1)
        sampled = sampled.view(bsz, frames, heads, head_dim, num_vox, points)
        sampled = sampled.permute(0, 4, 2, 1, 5, 3).reshape(bsz, num_vox, heads,
                                                            frames * points, head_dim)
        out = (sampled * weights.unsqueeze(-1)).sum(3)  # (B, V, H, D)
        return self.output_proj(out.reshape(bsz, num_vox, chans))


@MODELS.register_module()
class MIM4DTemporalPredictor(BaseModule):
    """Predict the volume of a withheld frame from the other frames' volumes.

    The context volumes arrive already warped into the target frame (metric
    ego-motion). Every voxel of the target volume is a query, initialised
    from the NEAREST context frame (smallest ``|dt|``); each of the
    ``num_layers`` layers (paper: 2) runs

    1. short-term branch: multi-head cross-attention to the ``window x
       window`` (y, x) neighbourhood of the same voxel in the nearest frame
       (with a learned offset embedding), which lets the query pick up
       content that moved by up to ``window // 2`` voxels;
    2. long-term branch: multi-head cross-attention to the same voxel in
       ALL context frames (with a learned embedding of the time offset
       ``dt``, seconds);
    3. a feed-forward block; pre-norm residual connections throughout.

    That is ``attention='window'``: fixed local windows (short term) and
    per-voxel attention across frames (long term), plain
    ``nn.MultiheadAttention``. Keys that fall outside a warped source grid
    are masked; a learnable null token (key = value) keeps voxels with no
    valid key finite.

    ``attention='deformable'`` is MIM4D's form: both branches are
    :class:`DeformableTemporalAttention` (learned sampling offsets around
    each voxel, trilinear sampling with ``F.grid_sample``, weights over
    frames and points; short term: the nearest frame, long term: all
    context frames), pure PyTorch as well.

    Args:
        channels (int): C, volume channels (MIM4D: 32).
        num_layers (int): Decoder layers (paper: 2).
        num_heads (int): Attention heads (must divide C).
        window (int): Odd side of the short-term (y, x) window, voxels
            (``'window'`` only).
        ffn_ratio (int): Hidden width of the FFN as a multiple of C.
        attention (str): ``'window'`` or ``'deformable'``.
        num_points (int): Sampling points per head and frame
            (``'deformable'`` only).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, channels: int = 32, num_layers: int = 2, num_heads: int = 4,
                 window: int = 3, ffn_ratio: int = 2, attention: str = 'window',
                 num_points: int = 4, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if attention not in ('window', 'deformable'):
            raise ValueError(f"attention must be 'window' or 'deformable', got {attention!r}")
        if window % 2 != 1:
            raise ValueError(f'window must be odd, got {window}')
        if num_points < 1:
            raise ValueError(f'num_points must be >= 1, got {num_points}')
        self.channels = channels
        self.attention = attention
        self.query_proj = nn.Linear(channels, channels)
        self.time_embed = nn.Sequential(nn.Linear(1, channels), nn.ReLU(inplace=True),
                                        nn.Linear(channels, channels))
        if attention == 'window':
            self.window = window
            self.offset_embed = nn.Parameter(torch.zeros(window * window, channels))
            self.null_token = nn.Parameter(torch.zeros(channels))

        def branch() -> nn.Module:
            if attention == 'window':
                return _KeyAttention(channels, num_heads)
            return DeformableTemporalAttention(channels, num_heads, num_points)

        self.layers = nn.ModuleList(
            _PredictorLayer(channels, ffn_ratio, branch(), branch()) for _ in range(num_layers))
        self.out_proj = nn.Linear(channels, channels)

    def _window_tokens(self, volume: Tensor, valid: Tensor) -> Tuple[Tensor, Tensor]:
        """(B, C, Z, Y, X) -> keys (B * V, k * k, C) and invalid mask (B * V, k * k)."""
        bsz, chans, size_z, size_y, size_x = volume.shape
        kk, pad = self.window * self.window, self.window // 2
        planes = volume.permute(0, 2, 1, 3, 4).reshape(bsz * size_z, chans, size_y, size_x)
        cols = F.unfold(planes, self.window, padding=pad)  # (B Z, C k k, Y X)
        cols = cols.view(bsz, size_z, chans, kk, size_y * size_x).permute(0, 1, 4, 3, 2)
        keys = cols.reshape(-1, kk, chans) + self.offset_embed
        vplanes = valid.to(volume.dtype).reshape(bsz * size_z, 1, size_y, size_x)
        vcols = F.unfold(vplanes, self.window, padding=pad)  # zero padding = invalid
        vcols = vcols.view(bsz, size_z, kk, size_y * size_x).permute(0, 1, 3, 2)
        return keys, vcols.reshape(-1, kk) < 0.5

    def _with_null(self, keys: Tensor, invalid: Tensor) -> Tuple[Tensor, Tensor]:
        null = self.null_token.expand(keys.shape[0], 1, -1)
        return (torch.cat([null, keys], dim=1),
                torch.cat([invalid.new_zeros(invalid.shape[0], 1), invalid], dim=1))

    def forward(self, context: Tensor, valid: Tensor, time_offsets: Tensor) -> Tensor:
        """Predict the target volume.

        Args:
            context (Tensor): (B, F, C, Z, Y, X) context volumes warped into
                the target frame.
            valid (Tensor): (B, F, Z, Y, X) bool, voxels whose warped position
                fell inside the source grid.
            time_offsets (Tensor): (B, F) capture time of each context frame
                minus the target's, seconds.

        Returns:
            Tensor: (B, C, Z, Y, X) predicted target volume.
        """
        bsz, num_frames, chans = context.shape[:3]
        if chans != self.channels:
            raise ValueError(f'context has {chans} channels, expected {self.channels}')
        if valid.shape != context.shape[:2] + context.shape[3:] or \
                time_offsets.shape != context.shape[:2]:
            raise ValueError(f'valid must be (B, F, Z, Y, X) and time_offsets (B, F) for context '
                             f'{tuple(context.shape)}, got {tuple(valid.shape)} and '
                             f'{tuple(time_offsets.shape)}')
        spatial = context.shape[3:]
        num_vox = spatial.numel()
        batch = torch.arange(bsz, device=context.device)
        nearest = time_offsets.abs().argmin(dim=1)
        near_vol, near_valid = context[batch, nearest], valid[batch, nearest]
        time = self.time_embed(time_offsets.to(context.dtype).unsqueeze(-1))  # (B, F, C)
        query = self.query_proj(near_vol.flatten(2).transpose(1, 2))  # (B, V, C)
        if self.attention == 'deformable':
            short = (near_vol.unsqueeze(1), near_valid.unsqueeze(1), time[batch, nearest, None])
            long = (context, valid, time)
        else:
            short = self._with_null(*self._window_tokens(near_vol, near_valid))
            # Long term: (B, F, C, V) -> (B * V, F, C) plus the time embedding.
            tokens = context.flatten(3).permute(0, 3, 1, 2) + time.unsqueeze(1)
            long = self._with_null(
                tokens.reshape(bsz * num_vox, num_frames, chans),
                ~valid.flatten(2).permute(0, 2, 1).reshape(bsz * num_vox, num_frames))
            query = query.reshape(-1, chans)  # one row per voxel
        for layer in self.layers:
            query = layer(query, short, long)
        out = self.out_proj(query).view(bsz, num_vox, chans).transpose(1, 2)
        return out.reshape(bsz, chans, *spatial)
