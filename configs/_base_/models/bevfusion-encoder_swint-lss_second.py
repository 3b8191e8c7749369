# BEVFusion's camera + LiDAR encoder (mit-han-lab/bevfusion, mmdet3d's
# projects/BEVFusion lidar-cam config), in the BEVFusionCompat modules whose
# parameter names are BEVFusion's: Swin-T (ImageNet init) + GeneralizedLSSFPN
# (256 channels at image stride 8), the LSS view transform with the LiDAR
# depth prior (80 channels, one height cell over [-10, 10] m, the BEV
# downsampled by 2 after pooling), hard voxels of <= 10 points averaged by
# HardSimpleVFE, the SECOND-style sparse encoder (base 16, output 128 x 2
# height cells = 256 BEV channels) and the ConvFuser (80 + 256 -> 256).
#
# A config adds the detector type and its grid: data_preprocessor.voxel_layer
# (point_cloud_range, voxel_size), view_transform (image_size, feature_size,
# xbound, ybound, dbound) and pts_middle_encoder.sparse_shape.
model = dict(
    data_preprocessor=dict(
        type='Det3DDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        voxel=True,
        voxel_type='hard',
        voxel_layer=dict(max_num_points=10, max_voxels=(120000, 160000))),
    img_backbone=dict(
        type='mmdet.SwinTransformer',
        embed_dims=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.2,
        patch_norm=True,
        out_indices=[1, 2, 3],
        with_cp=False,
        convert_weights=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/SwinTransformer/storage/releases/'
            'download/v1.0.0/swin_tiny_patch4_window7_224.pth')),
    img_neck=dict(
        type='BEVFusionCompatGeneralizedLSSFPN',
        in_channels=[192, 384, 768],
        out_channels=256,
        start_level=0,
        num_outs=3,
        norm_cfg=dict(type='BN2d', requires_grad=True),
        act_cfg=dict(type='ReLU', inplace=True),
        upsample_cfg=dict(mode='bilinear', align_corners=False)),
    view_transform=dict(
        type='BEVFusionCompatDepthLSSTransform',
        in_channels=256,
        out_channels=80,
        zbound=[-10.0, 10.0, 20.0],
        downsample=2,
        bev_axes='xy'),
    pts_voxel_encoder=dict(type='HardSimpleVFE', num_features=5),
    pts_middle_encoder=dict(
        type='BEVFusionCompatSparseEncoder',
        in_channels=5,
        order=('conv', 'norm', 'act'),
        norm_cfg=dict(type='BN1d', eps=0.001, momentum=0.01),
        encoder_channels=((16, 16, 32), (32, 32, 64), (64, 64, 128), (128, 128)),
        encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, (1, 1, 0)), (0, 0)),
        block_type='basicblock'),
    fusion_layer=dict(
        type='BEVFusionCompatConvFuser', in_channels=[80, 256], out_channels=256))
