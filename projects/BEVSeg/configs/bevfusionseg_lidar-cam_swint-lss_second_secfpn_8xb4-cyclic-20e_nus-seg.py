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
# Shared parts (configs/_base_/): the BEVFusion encoder, the nuScenes
# multi-view data, the cyclic 20-epoch schedule and the runtime.
_base_ = [
    './_base_/models/bevfusion-encoder_swint-lss_second.py',
    './_base_/datasets/nus-multiview.py',
    './_base_/schedules/cyclic-20e.py',
    './_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['projects.BEVFusionCompat.bevfusion_compat', 'projects.BEVSeg.bevseg'],
    allow_failed_imports=False)

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
dataset_type = 'BEVSegNuScenesDataset'

model = dict(
    type='BEVFusionSeg',
    # max_voxels and drop_path_rate: this config's values (the encoder base has
    # the detection config's 120000 / 160000 voxels and drop path 0.2)
    data_preprocessor=dict(
        voxel_layer=dict(
            point_cloud_range=point_cloud_range,
            voxel_size=voxel_size,
            max_voxels=(90000, 120000))),
    img_backbone=dict(drop_path_rate=0.3),
    view_transform=dict(
        image_size=image_size,
        feature_size=feature_size,
        xbound=[-51.2, 51.2, 0.4],
        ybound=[-51.2, 51.2, 0.4],
        dbound=dbound),
    pts_middle_encoder=dict(sparse_shape=sparse_shape),
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
# points + 9 sweeps + 6 images (_base_), the map label
train_pipeline = _base_.train_pipeline + [
    dict(type='LoadBEVMapLabel', classes=map_classes, output_scope=label_scope),
    # image-space augmentation only (it changes img_aug_matrix, not the BEV frame)
    dict(type='BEVFusionCompatImageAug3D', final_dim=image_size, resize_lim=[0.38, 0.55],
         bot_pct_lim=[0.0, 0.0], rot_lim=[-5.4, 5.4], rand_flip=True, is_train=True),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='PackBEVSegInputs', keys=['points', 'img'], meta_keys=meta_keys)
]
# the same loading steps (sweeps in their fixed test order), the fixed test resize
test_pipeline = [
    _base_.train_pipeline[0],
    dict(_base_.train_pipeline[1], test_mode=True),
    _base_.train_pipeline[2],
    dict(type='LoadBEVMapLabel', classes=map_classes, output_scope=label_scope),
    dict(type='BEVFusionCompatImageAug3D', final_dim=image_size, resize_lim=[0.48, 0.48],
         bot_pct_lim=[0.0, 0.0], is_train=False),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='PackBEVSegInputs', keys=['points', 'img'], meta_keys=meta_keys)
]

train_dataloader = dict(
    batch_size=4,
    dataset=dict(type=dataset_type, pipeline=train_pipeline))  # every frame has a map label
val_dataloader = dict(dataset=dict(type=dataset_type, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='BEVMapSegMetric', classes=map_classes)
test_evaluator = val_evaluator

# BEVFusionCompatImageAug3D draws per (seed, rank, epoch, worker): reproducible, different across
# workers and ranks, exact resume at epoch boundaries.
custom_hooks = [dict(type='SeededRandomnessHook')]
