# BEV map segmentation, camera + LiDAR, from scratch (ImageNet Swin-T): the
# BEVFusion map-segmentation setting (mit-han-lab/bevfusion
# configs/nuscenes/seg/fusion-bev256d2-lss.yaml): Swin-T + GeneralizedLSSFPN
# + LSS (256x704 images, 0.4 m pooling, downsample 2), SECOND-style sparse
# encoder at 0.1 m over +-51.2 m (1024 x 1024 x 41), ConvFuser 256, SECOND +
# SECONDFPN decoder (512 channels, 128 x 128 cells of 0.8 m), map head
# resampling onto the label grid +-50 m at 0.5 m (200 x 200), 6 classes,
# focal loss; AdamW 1e-4, cyclic schedule, 20 epochs on 8 GPUs x 4.
# Differences from BEVFusion's seg config: the view transform is the
# DepthLSSTransform (LiDAR depth prior, as BEVFusion's detection configs and
# NS-MAE pre-training) so that NS-MAE's view transform transfers whole, and
# no BEV augmentation (the labels are in the un-augmented LiDAR frame).
custom_imports = dict(
    imports=['projects.BEVFusionCompat.bevfusion_compat', 'projects.BEVSeg.bevseg'], allow_failed_imports=False)
default_scope = 'mmdet3d'

point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
voxel_size = [0.1, 0.1, 0.2]
sparse_shape = [1024, 1024, 41]  # X, Y, Z
image_size = [256, 704]
feature_size = [32, 88]
dbound = [1.0, 60.0, 0.5]
bev_scope = [[-51.2, 51.2, 0.8], [-51.2, 51.2, 0.8]]  # decoder output, [B, C, X, Y]
label_scope = [[-50.0, 50.0, 0.5], [-50.0, 50.0, 0.5]]  # map labels, [C, X, Y]
map_classes = [
    'drivable_area', 'ped_crossing', 'walkway', 'stop_line', 'carpark_area', 'divider'
]
class_names = [
    'car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier',
    'motorcycle', 'bicycle', 'pedestrian', 'traffic_cone'
]
metainfo = dict(classes=class_names)
dataset_type = 'BEVSegNuScenesDataset'
data_root = 'data/nuscenes/'
input_modality = dict(use_lidar=True, use_camera=True)
backend_args = None
data_prefix = dict(
    pts='samples/LIDAR_TOP',
    CAM_FRONT='samples/CAM_FRONT',
    CAM_FRONT_LEFT='samples/CAM_FRONT_LEFT',
    CAM_FRONT_RIGHT='samples/CAM_FRONT_RIGHT',
    CAM_BACK='samples/CAM_BACK',
    CAM_BACK_RIGHT='samples/CAM_BACK_RIGHT',
    CAM_BACK_LEFT='samples/CAM_BACK_LEFT',
    sweeps='sweeps/LIDAR_TOP')

model = dict(
    type='BEVFusionSeg',
    data_preprocessor=dict(
        type='Det3DDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        voxel=True,
        voxel_type='hard',
        voxel_layer=dict(
            max_num_points=10,
            point_cloud_range=point_cloud_range,
            voxel_size=voxel_size,
            max_voxels=(90000, 120000))),
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
        drop_path_rate=0.3,
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
        image_size=image_size,
        feature_size=feature_size,
        xbound=[-51.2, 51.2, 0.4],
        ybound=[-51.2, 51.2, 0.4],
        zbound=[-10.0, 10.0, 20.0],
        dbound=dbound,
        downsample=2,
        bev_axes='xy'),
    pts_voxel_encoder=dict(type='HardSimpleVFE', num_features=5),
    pts_middle_encoder=dict(
        type='BEVFusionCompatSparseEncoder',
        in_channels=5,
        sparse_shape=sparse_shape,
        order=('conv', 'norm', 'act'),
        norm_cfg=dict(type='BN1d', eps=0.001, momentum=0.01),
        encoder_channels=((16, 16, 32), (32, 32, 64), (64, 64, 128), (128, 128)),
        encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, (1, 1, 0)), (0, 0)),
        block_type='basicblock'),
    fusion_layer=dict(type='BEVFusionCompatConvFuser', in_channels=[80, 256], out_channels=256),
    pts_backbone=dict(
        type='SECOND',
        in_channels=256,
        out_channels=[128, 256],
        layer_nums=[5, 5],
        layer_strides=[1, 2],
        norm_cfg=dict(type='BN', eps=0.001, momentum=0.01),
        conv_cfg=dict(type='Conv2d', bias=False)),
    pts_neck=dict(
        type='SECONDFPN',
        in_channels=[128, 256],
        out_channels=[256, 256],
        upsample_strides=[1, 2],
        norm_cfg=dict(type='BN', eps=0.001, momentum=0.01),
        upsample_cfg=dict(type='deconv', bias=False),
        use_conv_for_no_stride=True),
    seg_head=dict(
        type='BEVFusionSegHead',
        in_channels=512,
        grid_transform=dict(input_scope=bev_scope, output_scope=label_scope, input_axes='xy'),
        classes=map_classes,
        loss='focal'),
    depth_input='all')

meta_keys = ('cam2img', 'ori_cam2img', 'lidar2cam', 'lidar2img', 'img_aug_matrix',
             'lidar_aug_matrix', 'num_pts_feats', 'sample_idx', 'lidar_path', 'img_path',
             'token', 'ori_shape', 'img_shape', 'pad_shape', 'box_type_3d')
train_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5,
         backend_args=backend_args),
    dict(type='LoadPointsFromMultiSweeps', sweeps_num=9, load_dim=5, use_dim=5,
         pad_empty_sweeps=True, remove_close=True, backend_args=backend_args),
    dict(type='LoadMultiViewImageFromFiles', to_float32=True, color_type='color',
         num_views=6, backend_args=backend_args),
    dict(type='LoadBEVMapLabel', classes=map_classes, output_scope=label_scope),
    # image-space augmentation only (it changes img_aug_matrix, not the BEV frame)
    dict(type='BEVFusionCompatImageAug3D', final_dim=image_size, resize_lim=[0.38, 0.55],
         bot_pct_lim=[0.0, 0.0], rot_lim=[-5.4, 5.4], rand_flip=True, is_train=True),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='PackBEVSegInputs', keys=['points', 'img'], meta_keys=meta_keys)
]
test_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5,
         backend_args=backend_args),
    dict(type='LoadPointsFromMultiSweeps', sweeps_num=9, load_dim=5, use_dim=5,
         pad_empty_sweeps=True, remove_close=True, test_mode=True,
         backend_args=backend_args),
    dict(type='LoadMultiViewImageFromFiles', to_float32=True, color_type='color',
         num_views=6, backend_args=backend_args),
    dict(type='LoadBEVMapLabel', classes=map_classes, output_scope=label_scope),
    dict(type='BEVFusionCompatImageAug3D', final_dim=image_size, resize_lim=[0.48, 0.48],
         bot_pct_lim=[0.0, 0.0], is_train=False),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='PackBEVSegInputs', keys=['points', 'img'], meta_keys=meta_keys)
]

train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='nuscenes_infos_train.pkl',
        pipeline=train_pipeline,
        metainfo=metainfo,
        modality=input_modality,
        data_prefix=data_prefix,
        test_mode=False,
        filter_empty_gt=False,  # every frame has a map label
        box_type_3d='LiDAR',
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='nuscenes_infos_val.pkl',
        pipeline=test_pipeline,
        metainfo=metainfo,
        modality=input_modality,
        data_prefix=data_prefix,
        test_mode=True,
        box_type_3d='LiDAR',
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(type='BEVMapSegMetric', classes=map_classes)
test_evaluator = val_evaluator

max_epochs = 20
lr = 1e-4
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, weight_decay=0.01),
    paramwise_cfg=dict(custom_keys=dict(
        absolute_pos_embed=dict(decay_mult=0.0),
        relative_position_bias_table=dict(decay_mult=0.0))),
    clip_grad=dict(max_norm=35, norm_type=2))
# BEVFusion's cyclic policy: lr up to 10x over the first 40 %, cosine down to
# 1e-4 x; momentum (Adam beta1) mirrored.
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=8, eta_min=lr * 10, begin=0, end=8,
         by_epoch=True, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=12, eta_min=lr * 1e-4, begin=8, end=20,
         by_epoch=True, convert_to_iter_based=True),
    dict(type='CosineAnnealingMomentum', T_max=8, eta_min=0.85 / 0.95, begin=0, end=8,
         by_epoch=True, convert_to_iter_based=True),
    dict(type='CosineAnnealingMomentum', T_max=12, eta_min=1, begin=8, end=20,
         by_epoch=True, convert_to_iter_based=True)
]
auto_scale_lr = dict(enable=False, base_batch_size=32)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'))
# BEVFusionCompatImageAug3D draws per (seed, rank, epoch, worker): reproducible, different across
# workers and ranks, exact resume at epoch boundaries.
custom_hooks = [dict(type='SeededRandomnessHook')]
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Det3DLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
