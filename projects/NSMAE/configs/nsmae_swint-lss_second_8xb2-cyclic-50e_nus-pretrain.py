# NS-MAE pre-training, camera + LiDAR (BEVFusion encoder: Swin-T, LSS with
# LiDAR depth prior, SECOND-style X,Y,Z sparse encoder, ConvFuser), 256x704
# images, voxel 0.075 m, 9 sweeps, AdamW 1e-4, cyclic schedule, 50 epochs on
# 8 GPUs x 2 samples, LiDAR encoder frozen from epoch 10, Swin-T from random
# init (as released). fp16: tools/dist_train.sh CONFIG 8 --amp
# Every paper / released hyper-parameter is listed in projects/NSMAE/README.md
# and asserted by tests/nsmae/test_paper_fidelity.py.
custom_imports = dict(
    imports=['projects.BEVFusionCompat.bevfusion_compat', 'projects.NSMAE.nsmae'],
    allow_failed_imports=False)
default_scope = 'mmdet3d'

point_cloud_range = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
voxel_size = [0.075, 0.075, 0.2]
sparse_shape = [1440, 1440, 41]  # X, Y, Z (+1 in Z, SECOND convention)
image_size = [256, 704]
feature_size = [32, 88]
dbound = [1.0, 60.0, 0.5]  # 118 depth bins
# Released pre-training starts Swin-T from random init. Switch: inherit and
# set model.img_backbone.init_cfg=dict(type='Pretrained',
# checkpoint=swin_t_imagenet) for ImageNet init (a download at init_weights).
swin_t_imagenet = ('https://github.com/SwinTransformer/storage/releases/'
                   'download/v1.0.0/swin_tiny_patch4_window7_224.pth')
class_names = [
    'car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier',
    'motorcycle', 'bicycle', 'pedestrian', 'traffic_cone'
]
metainfo = dict(classes=class_names)
dataset_type = 'NuScenesDataset'
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
    type='NSMAE',
    data_preprocessor=dict(
        # Det3DDataPreprocessor that shuffles the points (mask generator)
        # before hard voxelisation, so that max_voxels / max_num_points do
        # not systematically drop the older sweeps
        type='NSMAEDataPreprocessor',
        shuffle_points=True,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        # Stock BEVFusion voxelisation: hard voxels (<= 10 points each)
        # averaged by a parameter-free HardSimpleVFE.
        voxel=True,
        voxel_type='hard',
        voxel_layer=dict(
            max_num_points=10,
            point_cloud_range=point_cloud_range,
            voxel_size=voxel_size,
            max_voxels=(120000, 160000))),
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
        init_cfg=None),
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
        xbound=[-54.0, 54.0, 0.3],
        ybound=[-54.0, 54.0, 0.3],
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
        encoder_channels=((16, 16, 32), (32, 32, 64), (64, 64, 128), (128,
                                                                      128)),
        encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, (1, 1, 0)), (0, 0)),
        block_type='basicblock'),
    fusion_layer=dict(
        type='BEVFusionCompatConvFuser', in_channels=[80, 256], out_channels=256),
    img_masker=dict(
        type='NSMAEImageMasker',
        patch_size=8,
        mask_ratio=0.5,
        shared_across_views=False),
    voxel_mask_ratio=0.9,
    depth_input='masked',
    mask_depth_in_image_patches=True,
    # One Conv2d(80, 4, 1) shared by the 118 bins (released design). Density
    # bias 0.1 / m at init (deviation: PyTorch's default init, as released,
    # leaves every ray transparent and the head without gradient for about
    # half the seeds); density_bias_init=None restores it.
    pv_render_head=dict(
        type='NSMAEPerspectiveRenderHead',
        in_channels=80,
        dbound=dbound,
        density_bias_init=0.1),
    # 41 height bins of 0.2 m centred on the voxel centres (-4.9 .. 3.1 m).
    bev_render_head=dict(
        type='NSMAEBEVRenderHead',
        in_channels=256,
        zbound=[-5.0, 3.2],
        num_bins=41),
    # Paper weights 10000 / 0.01 / 0.01 on the released units: RGB MSE in
    # [0, 1], PV depth L1 in metres, BEV height L1 in voxel indices (0.2 m).
    # Our BEV height is in metres, so the released 0.01 per voxel index is
    # 0.01 / 0.2 = 0.05 per metre.
    loss_weights=dict(rgb=10000.0, pv_depth=0.01, bev_depth=0.05),
    bev_axes='xy')

meta_keys = ('cam2img', 'ori_cam2img', 'lidar2cam', 'lidar2img',
             'img_aug_matrix', 'lidar_aug_matrix', 'num_pts_feats',
             'sample_idx', 'lidar_path', 'img_path', 'token', 'ori_shape',
             'img_shape', 'pad_shape', 'box_type_3d',
             # written by global LiDAR augmentations, which NSMAE refuses
             'pcd_rotation', 'pcd_scale_factor', 'pcd_trans',
             'pcd_horizontal_flip', 'pcd_vertical_flip',
             'transformation_3d_flow')
train_pipeline = [
    dict(
        type='LoadPointsFromFile',
        coord_type='LIDAR',
        load_dim=5,
        use_dim=5,
        backend_args=backend_args),
    dict(
        type='LoadPointsFromMultiSweeps',
        sweeps_num=9,
        load_dim=5,
        use_dim=5,
        pad_empty_sweeps=True,
        remove_close=True,
        backend_args=backend_args),
    dict(
        type='LoadMultiViewImageFromFiles',
        to_float32=True,
        color_type='color',
        num_views=6,
        backend_args=backend_args),
    dict(
        type='BEVFusionCompatImageAug3D',
        final_dim=image_size,
        resize_lim=[0.38, 0.55],
        bot_pct_lim=[0.0, 0.0],
        rot_lim=[-5.4, 5.4],
        rand_flip=True,
        is_train=True),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='Pack3DDetInputs', keys=['points', 'img'], meta_keys=meta_keys)
]

train_dataloader = dict(
    batch_size=2,
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
        filter_empty_gt=False,  # pre-training uses no boxes
        box_type_3d='LiDAR',
        backend_args=backend_args))
# Held-out pre-training quality: the val frames are masked and rendered as in
# training (test-time image resize, no flip / rotation) and RenderQualityMetric
# reports render/psnr (rendered RGB, dB), render/depth_abs_err (perspective
# depth on LiDAR pixels, m) and render/bev_height_abs_err (m).
test_pipeline = train_pipeline[:3] + [
    dict(
        type='BEVFusionCompatImageAug3D',
        final_dim=image_size,
        resize_lim=[0.38, 0.55],
        bot_pct_lim=[0.0, 0.0],
        is_train=False),
] + train_pipeline[4:]
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
val_cfg = dict()
val_evaluator = dict(type='RenderQualityMetric')
test_dataloader = val_dataloader
test_cfg = dict()
test_evaluator = val_evaluator

max_epochs = 50
lr = 1e-4
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=10)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2))
# BEVFusion's cyclic schedule (mmcv's cyclic lr/momentum updaters, released
# with target ratios (10, 1e-4) and (0.85 / 0.95, 1), step_ratio_up 0.4)
# stretched to 50 epochs: lr up to 10x over the first 40 %, then cosine decay
# to 1e-4 x; Adam beta1 down to 0.85 / 0.95 of its start (0.9 -> 0.805)
# over the same 40 %, then back to its start. The momentum ratios are
# RELATIVE (eta_min_ratio): mmdet3d's cyclic-20e writes them as absolute
# eta_min, which drives beta1 to 1.0.
param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        T_max=20,
        eta_min=lr * 10,
        begin=0,
        end=20,
        by_epoch=True,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=30,
        eta_min=lr * 1e-4,
        begin=20,
        end=50,
        by_epoch=True,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingMomentum',
        T_max=20,
        eta_min_ratio=0.85 / 0.95,
        begin=0,
        end=20,
        by_epoch=True,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingMomentum',
        T_max=30,
        eta_min_ratio=1.0,
        begin=20,
        end=50,
        by_epoch=True,
        convert_to_iter_based=True)
]
auto_scale_lr = dict(enable=False, base_batch_size=16)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'))
# The released code's `early_stop_epoch`: the LiDAR encoder stops training
# after 10 of 50 epochs (the released `require_grad` typo made it a no-op).
freeze_epoch = 10
# SeededRandomnessHook: augmentation draws per (seed, rank, epoch, worker), masks per
# (seed, rank, iteration): reproducible, different across workers / ranks, exact resume.
custom_hooks = [
    dict(type='SeededRandomnessHook'),
    dict(type='NSMAERenderVisualizationHook', interval=1000, max_samples=1),
    dict(type='NSMAEFreezeLiDAREncoderHook', freeze_epoch=freeze_epoch)
]
# parameters stop receiving gradients after DDP wrapped the model
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel', find_unused_parameters=True)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='Det3DLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
