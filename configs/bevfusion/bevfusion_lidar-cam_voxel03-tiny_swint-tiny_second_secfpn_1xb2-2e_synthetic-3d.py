# Stock mmdet3d BEVFusion C+L (projects/BEVFusion, upstream's own config), only
# shrunk to train on the CPU in minutes on the synthetic world: +-24 m at 0.3 m
# voxels (160 x 160 x 41, stock SECOND encoder channels), Swin-T with 24
# embedding channels and one block per stage, 176x64 input images, 39 depth
# bins, narrower fusion / SECOND / SECFPN / TransFusion head (50 proposals),
# 2 epochs, batch 2, no CBGS resampling. Everything else (model types, losses,
# assigner, pipeline steps, optimiser) is upstream's.
#
# Images: the synthetic world of the transfer experiment is 176x64, so the
# stock resize ranges are divided by 0.44 (the stock 1600 px -> 704 px scale):
# resize 1.0 maps a world image onto the input. Needs an mmdetection3d
# checkout: MMDET3D_ROOT (default ../mmdetection3d beside this repository).
# NS-MAE's tiny Swin C+L encoder converts strictly into this model:
# projects/NSMAE/configs/nsmae_swint-tiny-lss_second_1xb1-2e_synthetic-pretrain.py.
_base_ = ['{{$MMDET3D_ROOT:../../../mmdetection3d}}/projects/BEVFusion/configs/bevfusion_lidar-cam_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py']

point_cloud_range = [-24.0, -24.0, -5.0, 24.0, 24.0, 3.0]
voxel_size = [0.3, 0.3, 0.2]
grid_size = [160, 160, 41]
image_size = [64, 176]
post_center_range = [-30.0, -30.0, -10.0, 30.0, 30.0, 10.0]
data_root = 'data/synthetic/'
# NuScenesDataset's class default is v1.0-trainval and wins over the info
# file's metainfo, so the version is set here (as for tiny CenterPoint).
metainfo = dict(classes={{_base_.class_names}}, version='v1.0-mini')

model = dict(
    data_preprocessor=dict(
        pad_size_divisor=8,  # 176 px = 22 x 8, as the stock 704 px = 22 x 32
        voxelize_cfg=dict(
            point_cloud_range=point_cloud_range,
            voxel_size=voxel_size,
            max_voxels=[20000, 20000])),
    img_backbone=dict(
        embed_dims=24,
        depths=[1, 1, 1, 1],
        init_cfg=None),
    img_neck=dict(in_channels=[48, 96, 192], out_channels=32),
    view_transform=dict(
        in_channels=32,
        out_channels=16,
        image_size=image_size,
        feature_size=[image_size[0] // 8, image_size[1] // 8],
        xbound=[-24.0, 24.0, 1.2],
        ybound=[-24.0, 24.0, 1.2],
        dbound=[1.0, 40.0, 1.0]),
    fusion_layer=dict(in_channels=[16, 256], out_channels=64),
    pts_middle_encoder=dict(sparse_shape=grid_size),
    pts_backbone=dict(in_channels=64, out_channels=[32, 64]),
    pts_neck=dict(in_channels=[32, 64], out_channels=[64, 64]),
    bbox_head=dict(
        num_proposals=50,
        in_channels=128,
        hidden_channel=32,
        decoder_layer=dict(
            self_attn_cfg=dict(embed_dims=32),
            cross_attn_cfg=dict(embed_dims=32),
            ffn_cfg=dict(embed_dims=32, feedforward_channels=64),
            pos_encoding_cfg=dict(num_pos_feats=32)),
        train_cfg=dict(
            point_cloud_range=point_cloud_range,
            grid_size=grid_size,
            voxel_size=voxel_size),
        test_cfg=dict(
            grid_size=grid_size,
            voxel_size=voxel_size[:2],
            pc_range=point_cloud_range[:2]),
        bbox_coder=dict(
            pc_range=point_cloud_range[:2],
            post_center_range=post_center_range,
            voxel_size=voxel_size[:2])))

# Upstream's pipelines with the range and image sizes shrunk (a test checks
# that nothing else differs).
train_pipeline = [
    dict(type='BEVLoadMultiViewImageFromFiles', to_float32=True, color_type='color',
         backend_args=None),
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5,
         backend_args=None),
    dict(type='LoadPointsFromMultiSweeps', sweeps_num=9, load_dim=5, use_dim=5,
         pad_empty_sweeps=True, remove_close=True, backend_args=None),
    dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True,
         with_attr_label=False),
    dict(type='ImageAug3D', final_dim=image_size, resize_lim=[0.38 / 0.44, 0.55 / 0.44],
         bot_pct_lim=[0.0, 0.0], rot_lim=[-5.4, 5.4], rand_flip=True, is_train=True),
    dict(type='BEVFusionGlobalRotScaleTrans', scale_ratio_range=[0.9, 1.1],
         rot_range=[-0.78539816, 0.78539816], translation_std=0.5),
    dict(type='BEVFusionRandomFlip3D'),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ObjectRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ObjectNameFilter', classes={{_base_.class_names}}),
    dict(type='GridMask', use_h=True, use_w=True, max_epoch=6, rotate=1, offset=False,
         ratio=0.5, mode=1, prob=0.0, fixed_prob=True),
    dict(type='PointShuffle'),
    dict(type='Pack3DDetInputs',
         keys=['points', 'img', 'gt_bboxes_3d', 'gt_labels_3d', 'gt_bboxes', 'gt_labels'],
         meta_keys=['cam2img', 'ori_cam2img', 'lidar2cam', 'lidar2img', 'cam2lidar',
                    'ori_lidar2img', 'img_aug_matrix', 'box_type_3d', 'sample_idx',
                    'lidar_path', 'img_path', 'transformation_3d_flow', 'pcd_rotation',
                    'pcd_scale_factor', 'pcd_trans', 'img_aug_matrix', 'lidar_aug_matrix',
                    'num_pts_feats'])
]
test_pipeline = train_pipeline[:3] + [  # the same images, points and sweeps
    dict(type='ImageAug3D', final_dim=image_size, resize_lim=[1.0, 1.0],
         bot_pct_lim=[0.0, 0.0], rot_lim=[0.0, 0.0], rand_flip=False, is_train=False),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='Pack3DDetInputs',
         keys=['img', 'points', 'gt_bboxes_3d', 'gt_labels_3d'],
         meta_keys=['cam2img', 'ori_cam2img', 'lidar2cam', 'lidar2img', 'cam2lidar',
                    'ori_lidar2img', 'img_aug_matrix', 'box_type_3d', 'sample_idx',
                    'lidar_path', 'img_path', 'num_pts_feats'])
]

train_dataloader = dict(
    _delete_=True,
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='NuScenesDataset',
        data_root=data_root,
        ann_file='nuscenes_infos_train.pkl',
        pipeline=train_pipeline,
        metainfo=metainfo,
        modality={{_base_.input_modality}},
        test_mode=False,
        data_prefix={{_base_.data_prefix}},
        use_valid_flag=True,
        box_type_3d='LiDAR'))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        pipeline=test_pipeline,
        metainfo=metainfo))
test_dataloader = val_dataloader
val_evaluator = dict(data_root=data_root, ann_file=data_root + 'nuscenes_infos_val.pkl')
test_evaluator = val_evaluator

param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=2)]
train_cfg = dict(max_epochs=2, val_interval=2)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
auto_scale_lr = dict(base_batch_size=2)
