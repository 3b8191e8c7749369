"""Temporal predictor: predict a withheld frame's volume from the other frames."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS


class _PredictorLayer(nn.Module):
    """Short-term window attention, long-term frame attention, FFN (pre-norm)."""

    def __init__(self, channels: int, num_heads: int, ffn_ratio: int) -> None:
        super().__init__()
        self.norm_short = nn.LayerNorm(channels)
        self.attn_short = nn.MultiheadAttention(channels, num_heads, batch_first=True)
        self.norm_long = nn.LayerNorm(channels)
        self.attn_long = nn.MultiheadAttention(channels, num_heads, batch_first=True)
        self.norm_ffn = nn.LayerNorm(channels)
        self.ffn = nn.Sequential(nn.Linear(channels, channels * ffn_ratio), nn.GELU(),
                                 nn.Linear(channels * ffn_ratio, channels))

    def forward(self, query: Tensor, short_kv: Tensor, short_mask: Tensor, long_kv: Tensor,
                long_mask: Tensor) -> Tensor:
        q = self.norm_short(query).unsqueeze(1)
        query = query + self.attn_short(q, short_kv, short_kv, key_padding_mask=short_mask,
                                        need_weights=False)[0].squeeze(1)
        q = self.norm_long(query).unsqueeze(1)
        query = query + self.attn_long(q, long_kv, long_kv, key_padding_mask=long_mask,
                                       need_weights=False)[0].squeeze(1)
        return query + self.ffn(self.norm_ffn(query))


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

    Simplification vs. MIM4D's deformable temporal cross-attention decoders:
    fixed local windows (short term) and per-voxel attention across frames
    (long term) replace learned sampling offsets, so everything is plain
    ``nn.MultiheadAttention`` (no CUDA op). Keys that fall outside a warped
    source grid are masked; a learnable null token (key = value) keeps voxels with no
    valid key finite.

    Args:
        channels (int): C, volume channels (MIM4D: 32).
        num_layers (int): Decoder layers (paper: 2).
        num_heads (int): Attention heads (must divide C).
        window (int): Odd side of the short-term (y, x) window, voxels.
        ffn_ratio (int): Hidden width of the FFN as a multiple of C.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, channels: int = 32, num_layers: int = 2, num_heads: int = 4,
                 window: int = 3, ffn_ratio: int = 2, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if window % 2 != 1:
            raise ValueError(f'window must be odd, got {window}')
        self.channels = channels
        self.window = window
        self.query_proj = nn.Linear(channels, channels)
        self.offset_embed = nn.Parameter(torch.zeros(window * window, channels))
        self.time_embed = nn.Sequential(nn.Linear(1, channels), nn.ReLU(inplace=True),
                                        nn.Linear(channels, channels))
        self.null_token = nn.Parameter(torch.zeros(channels))
        self.layers = nn.ModuleList(
            _PredictorLayer(channels, num_heads, ffn_ratio) for _ in range(num_layers))
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
        short_kv, short_invalid = self._with_null(*self._window_tokens(near_vol, near_valid))
        # Long term: (B, F, C, V) -> (B * V, F, C) plus the time embedding.
        time = self.time_embed(time_offsets.to(context.dtype).unsqueeze(-1))  # (B, F, C)
        tokens = context.flatten(3).permute(0, 3, 1, 2) + time.unsqueeze(1)
        long_kv, long_invalid = self._with_null(
            tokens.reshape(bsz * num_vox, num_frames, chans),
            ~valid.flatten(2).permute(0, 2, 1).reshape(bsz * num_vox, num_frames))
        query = self.query_proj(near_vol.flatten(2).transpose(1, 2).reshape(-1, chans))
        for layer in self.layers:
            query = layer(query, short_kv, short_invalid, long_kv, long_invalid)
        out = self.out_proj(query).view(bsz, num_vox, chans).transpose(1, 2)
        return out.reshape(bsz, chans, *spatial)
