"""BEVFusion-compatible sparse LiDAR encoder (X, Y, Z axis order)."""
from typing import List, Optional, Tuple

from torch import nn

from mmengine.runner import amp
from torch import Tensor

from mmdet3d.models.layers import make_sparse_convmodule
from mmdet3d.models.layers.spconv import IS_SPCONV2_AVAILABLE
from mmdet3d.models.middle_encoders import SparseEncoder
from mmdet3d.registry import MODELS

if IS_SPCONV2_AVAILABLE:
    from spconv.pytorch import SparseConvTensor
else:
    from mmcv.ops import SparseConvTensor


def sparse_encoder_axes(encoder: nn.Module) -> Tuple[str, str]:
    """Axis orders of a sparse encoder: its ``sparse_shape`` order and its BEV layout.

    Returns:
        tuple[str, str]: ``('xyz', 'xy')`` for :class:`BEVFusionCompatSparseEncoder`
        (``sparse_shape`` (X, Y, Z + 1), BEV [B, C, X, Y]), ``('zyx', 'yx')``
        for mmdet3d's stock ``SparseEncoder`` ((Z + 1, Y, X), [B, C, Y, X]);
        see :meth:`render_pretrain.grid.VoxelGrid.sparse_shape`.
    """
    if isinstance(encoder, BEVFusionCompatSparseEncoder):
        return 'xyz', 'xy'
    return 'zyx', 'yx'


@MODELS.register_module()
class BEVFusionCompatSparseEncoder(SparseEncoder):
    """SECOND-style sparse encoder whose sparse tensor is in X, Y, Z order.

    Differs from its parent :class:`mmdet3d.models.SparseEncoder` exactly as
    BEVFusion's ``BEVFusionSparseEncoder`` does, so the state dict has the
    same keys and shapes as the stock BEVFusion LiDAR encoder:

    - ``sparse_shape`` is given as (X, Y, Z) (e.g. [1440, 1440, 41]) and the
      per-layer ``encoder_paddings`` are read in X, Y, Z order;
    - ``conv_out`` reduces Z with kernel (1, 1, 3) and stride (1, 1, 2)
      instead of (3, 1, 1) / (2, 1, 1);
    - the output BEV map is laid out [B, C*Z', X, Y] (rows follow X).

    The input coordinates keep mmdet3d's convention (batch, z, y, x), as
    produced by ``Det3DDataPreprocessor``; they are reordered to
    (batch, x, y, z) inside :meth:`forward`. The detector can therefore use
    this encoder and the stock one interchangeably (only the BEV layout
    differs: stock is [B, C*Z', Y, X]).

    Args:
        in_channels (int): Voxel feature channels.
        sparse_shape (list[int]): Grid size (X, Y, Z), in voxels.
        **kwargs: Other arguments of :class:`SparseEncoder`.
    """

    def __init__(self,
                 in_channels: int,
                 sparse_shape: List[int],
                 order: Optional[Tuple[str]] = ('conv', 'norm', 'act'),
                 norm_cfg: Optional[dict] = dict(
                     type='BN1d', eps=1e-3, momentum=0.01),
                 output_channels: Optional[int] = 128,
                 **kwargs) -> None:
        super().__init__(
            in_channels=in_channels,
            sparse_shape=sparse_shape,
            order=order,
            norm_cfg=norm_cfg,
            output_channels=output_channels,
            **kwargs)
        if self.return_middle_feats:
            raise ValueError('BEVFusionCompatSparseEncoder does not return middle '
                             'features (return_middle_feats must be False)')
        encoder_out_channels = self.encoder_channels[-1][-1]
        self.conv_out = make_sparse_convmodule(
            encoder_out_channels,
            self.output_channels,
            kernel_size=(1, 1, 3),
            stride=(1, 1, 2),
            norm_cfg=norm_cfg,
            padding=0,
            indice_key='spconv_down2',
            conv_type='SparseConv3d')

    @amp.autocast(enabled=False)
    def forward(self, voxel_features: Tensor, coors: Tensor,
                batch_size: int) -> Tensor:
        """Encode voxels into a BEV map.

        Args:
            voxel_features (Tensor): Voxel features [M, in_channels].
            coors (Tensor): Voxel indices [M, 4] (int), columns
                (batch_idx, z_idx, y_idx, x_idx) as mmdet3d's voxelisers
                produce them.
            batch_size (int): Number of samples B.

        Returns:
            Tensor: BEV features [B, output_channels * Z', X, Y], rows along
            the LiDAR X axis, columns along Y (BEVFusion layout).
        """
        coors_xyz = coors[:, [0, 3, 2, 1]].int()
        x = SparseConvTensor(voxel_features, coors_xyz, self.sparse_shape,
                             batch_size)
        x = self.conv_input(x)
        for encoder_layer in self.encoder_layers:
            x = encoder_layer(x)
        dense = self.conv_out(x).dense()
        batch, channels, size_x, size_y, size_z = dense.shape
        dense = dense.permute(0, 1, 4, 2, 3).contiguous()
        return dense.view(batch, channels * size_z, size_x, size_y)
