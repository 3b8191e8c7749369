# BEVDet-R50 (Huang et al., arXiv 2112.11790) on nuScenes, rebuilt from registered
# mmdet3d 1.x parts. Image-side module names and shapes equal official
# BEVDet's, so its checkpoints and our pre-trained encoders load.
# Official version followed: HuangJunJie2017/BEVDet configs/bevdet/bevdet-r50.py at
# commit fb9cae662a47f81a09b06346f676a167b93a81c3 (six-task CenterHead, per-task
# Scale-NMS with circle NMS for barriers, zbound [-10, 10], resize_test 0.04,
# 500-iteration warm-up, steps at epochs 16 and 22).
# Not reproduced: CBGS resampling (see projects/BEVDetCompat/README.md).
# Shared parts: BEVDet-R50's image encoder (also MIM4D's) and schedule in
# configs/_base_/, mmdet3d's nuScenes dataset and runtime.
_base_ = [
    'mmdet3d::_base_/datasets/nus-3d.py',
    'mmdet3d::_base_/default_runtime.py',
    '../_base_/models/bevdet-r50_image-encoder.py',
    '../_base_/schedules/bevdet-24e.py',
]
custom_imports = dict(imports=['projects.BEVDetCompat.bevdet_compat'], allow_failed_imports=False)
default_scope = 'mmdet3d'

point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
voxel_size = [0.1, 0.1, 0.2]
class_names = [
    'car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier',
    'motorcycle', 'bicycle', 'pedestrian', 'traffic_cone'
]
metainfo = dict(classes=class_names)
input_size = (256, 704)  # (H, W) network input, pixels
grid_config = dict(
    x=[-51.2, 51.2, 0.8],  # metres: lower, upper, cell (128 cells)
    y=[-51.2, 51.2, 0.8],
    z=[-10.0, 10.0, 20.0],  # one height cell: pillars (official zbound)
    depth=[1.0, 60.0, 1.0],  # 59 depth bins, 1..59 m
)
num_bev_channels = 64  # BEVDet's numC_Trans

model = dict(
    type='BEVDetCompat',
    img_view_transformer=dict(
        type='BEVDetLSSViewTransformer',
        grid_config=grid_config,
        input_size=input_size,
        downsample=16,
        in_channels=512,
        out_channels=num_bev_channels),
    img_bev_encoder_backbone=dict(
        type='BEVDetCustomResNet',
        numC_input=num_bev_channels,
        num_channels=[num_bev_channels * 2, num_bev_channels * 4, num_bev_channels * 8]),
    img_bev_encoder_neck=dict(
        type='BEVDetFPNLSS',
        in_channels=num_bev_channels * 8 + num_bev_channels * 2,
        out_channels=256),
    pts_bbox_head=dict(
        type='BEVDetCenterHead',  # CenterHead + official per-task Scale-NMS at test time
        in_channels=256,
        tasks=[
            dict(num_class=1, class_names=['car']),
            dict(num_class=2, class_names=['truck', 'construction_vehicle']),
            dict(num_class=2, class_names=['bus', 'trailer']),
            dict(num_class=1, class_names=['barrier']),
            dict(num_class=2, class_names=['motorcycle', 'bicycle']),
            dict(num_class=2, class_names=['pedestrian', 'traffic_cone']),
        ],
        common_heads=dict(reg=(2, 2), height=(1, 2), dim=(3, 2), rot=(2, 2), vel=(2, 2)),
        share_conv_channel=64,
        bbox_coder=dict(
            type='CenterPointBBoxCoder',
            pc_range=point_cloud_range[:2],
            post_center_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
            max_num=500,
            score_threshold=0.1,
            out_size_factor=8,
            voxel_size=voxel_size[:2],
            code_size=9),
        separate_head=dict(type='SeparateHead', init_bias=-2.19, final_kernel=3),
        loss_cls=dict(type='mmdet.GaussianFocalLoss', reduction='mean'),
        loss_bbox=dict(type='mmdet.L1Loss', reduction='mean', loss_weight=0.25),
        norm_bbox=True),
    train_cfg=dict(
        pts=dict(
            point_cloud_range=point_cloud_range,
            grid_size=[1024, 1024, 40],
            voxel_size=voxel_size,
            out_size_factor=8,
            dense_reg=1,
            gaussian_overlap=0.1,
            max_objs=500,
            min_radius=2,
            code_weights=[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2])),
    test_cfg=dict(
        pts=dict(
            pc_range=point_cloud_range[:2],
            post_center_limit_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
            max_per_img=500,
            max_pool_nms=False,
            min_radius=[4, 12, 10, 1, 0.85, 0.175],
            score_threshold=0.1,
            out_size_factor=8,
            voxel_size=voxel_size[:2],
            pre_max_size=1000,
            post_max_size=83,
            # Scale-NMS (official, per task: car | truck, c.v. | bus, trailer | barrier |
            # motorcycle, bicycle | pedestrian, traffic_cone); circle NMS compares the
            # squared centre distance with min_radius
            nms_type=['rotate', 'rotate', 'rotate', 'circle', 'rotate', 'rotate'],
            nms_thr=[0.2, 0.2, 0.2, 0.2, 0.2, 0.5],
            nms_rescale_factor=[1.0, [0.7, 0.7], [0.4, 0.55], 1.1, [1.0, 1.0], [4.5, 9.0]])))

# mmdet3d's nus-3d.py gives the dataset, its info files under data/nuscenes/, the
# loaders and NuScenesMetric; camera-only input, the six cameras' folders:
input_modality = dict(use_lidar=False, use_camera=True)
data_prefix = dict(
    pts='samples/LIDAR_TOP',
    sweeps='sweeps/LIDAR_TOP',
    CAM_FRONT='samples/CAM_FRONT',
    CAM_FRONT_LEFT='samples/CAM_FRONT_LEFT',
    CAM_FRONT_RIGHT='samples/CAM_FRONT_RIGHT',
    CAM_BACK='samples/CAM_BACK',
    CAM_BACK_RIGHT='samples/CAM_BACK_RIGHT',
    CAM_BACK_LEFT='samples/CAM_BACK_LEFT')
backend_args = None
num_views = 6
# bda_matrix: BEVDetBEVAug's BEV augmentation, applied by BEVDetCompat to the lifted geometry.
# The pcd_* / lidar_aug_matrix keys are packed only when a stock LiDAR-frame augmentation ran:
# BEVDetCompat refuses such samples (GlobalRotScaleTrans / RandomFlip3D move the boxes, not
# the camera geometry)
meta_keys = ('sample_idx', 'token', 'img_path', 'ori_shape', 'img_shape', 'pad_shape',
             'box_mode_3d', 'box_type_3d', 'num_views', 'cam2img', 'lidar2cam',
             'img_aug_matrix', 'bda_matrix', 'pcd_rotation', 'pcd_rotation_angle', 'pcd_scale_factor',
             'pcd_trans', 'pcd_horizontal_flip', 'pcd_vertical_flip', 'transformation_3d_flow',
             'lidar_aug_matrix')

train_pipeline = [
    dict(type='LoadMultiViewImageFromFiles', to_float32=True, color_type='color',
         num_views=num_views, backend_args=backend_args),
    dict(type='BEVDetImageAug', final_size=input_size, resize_lim=(-0.06, 0.11),
         bot_pct_lim=(0.0, 0.0), rot_lim=(-5.4, 5.4), rand_flip=True),
    dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True, with_attr_label=False),
    # BEV data augmentation (official GlobalRotScaleTrans +-0.3925 rad / x0.95-1.05 and BEV
    # flips 0.5 with update_img2lidar): boxes here, the lifted geometry via bda_matrix
    dict(type='BEVDetBEVAug', rot_lim=(-22.5, 22.5), scale_lim=(0.95, 1.05),
         flip_dx_ratio=0.5, flip_dy_ratio=0.5),
    dict(type='ObjectRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ObjectNameFilter', classes=class_names),
    dict(type='Pack3DDetInputs', keys=['img', 'gt_bboxes_3d', 'gt_labels_3d'],
         meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadMultiViewImageFromFiles', to_float32=True, color_type='color',
         num_views=num_views, backend_args=backend_args),
    dict(type='BEVDetImageAug', final_size=input_size, bot_pct_lim=(0.0, 0.0), resize_test=0.04,
         test_mode=True),
    dict(type='Pack3DDetInputs', keys=['img'], meta_keys=meta_keys),
]

# metainfo: BEVDet's class order (the label ids of its six tasks), not nus-3d.py's
train_dataloader = dict(
    batch_size=8,
    dataset=dict(pipeline=train_pipeline, metainfo=metainfo, modality=input_modality,
                 data_prefix=data_prefix))
val_dataloader = dict(
    num_workers=4,
    dataset=dict(pipeline=test_pipeline, metainfo=metainfo, modality=input_modality,
                 data_prefix=data_prefix))
test_dataloader = val_dataloader

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
# BEVDetImageAug draws per (seed, rank, epoch, worker): reproducible, different across
# workers and ranks, exact resume at epoch boundaries.
custom_hooks = [dict(type='SeededRandomnessHook')]
