# Stock mmdet3d CenterPoint (voxel 0.075, SECOND, SECFPN, CenterHead), shrunk
# to train on the CPU in minutes on the synthetic nuScenes world:
# +-25.6 m at 0.2 m voxels (256 x 256 x 41), 2 epochs, batch 2. The train
# pipeline leaves out ground-truth database sampling (ObjectSample) to keep the
# run short; tools/create_data.py does write the world's database
# (nuscenes_dbinfos_train.pkl), which the stock-scale configs sample.
_base_ = ['mmdet3d::centerpoint/centerpoint_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py']

voxel_size = [0.2, 0.2, 0.2]
point_cloud_range = [-25.6, -25.6, -5.0, 25.6, 25.6, 3.0]
grid_size = [256, 256, 40]
class_names = [
    'car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier',
    'motorcycle', 'bicycle', 'pedestrian', 'traffic_cone'
]
data_root = 'data/synthetic/'
data_prefix = dict(pts='samples/LIDAR_TOP', img='', sweeps='sweeps/LIDAR_TOP')
# NuScenesDataset's class default is v1.0-trainval and wins over the info file's
# metainfo (mmengine merges with setdefault), so the version is set here.
metainfo = dict(classes=class_names, version='v1.0-mini')
sweeps_num = 3

model = dict(
    data_preprocessor=dict(
        voxel_layer=dict(
            voxel_size=voxel_size,
            point_cloud_range=point_cloud_range,
            max_voxels=(30000, 40000))),
    pts_middle_encoder=dict(sparse_shape=[41, grid_size[1], grid_size[0]]),
    pts_bbox_head=dict(
        bbox_coder=dict(
            voxel_size=voxel_size[:2],
            pc_range=point_cloud_range[:2],
            post_center_range=[-30, -30, -10.0, 30, 30, 10.0])),
    train_cfg=dict(
        pts=dict(
            grid_size=grid_size,
            voxel_size=voxel_size,
            point_cloud_range=point_cloud_range)),
    test_cfg=dict(
        pts=dict(
            voxel_size=voxel_size[:2],
            pc_range=point_cloud_range[:2],
            post_center_limit_range=[-30, -30, -10.0, 30, 30, 10.0])))

train_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(
        type='LoadPointsFromMultiSweeps',
        sweeps_num=sweeps_num,
        use_dim=[0, 1, 2, 3, 4],
        pad_empty_sweeps=True,
        remove_close=True),
    dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True),
    dict(
        type='GlobalRotScaleTrans',
        rot_range=[-0.3925, 0.3925],
        scale_ratio_range=[0.95, 1.05],
        translation_std=[0, 0, 0]),
    dict(
        type='RandomFlip3D',
        sync_2d=False,
        flip_ratio_bev_horizontal=0.5,
        flip_ratio_bev_vertical=0.5),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ObjectRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ObjectNameFilter', classes=class_names),
    dict(type='PointShuffle'),
    dict(type='Pack3DDetInputs', keys=['points', 'gt_bboxes_3d', 'gt_labels_3d'])
]
test_pipeline = train_pipeline[:2] + [  # the same points and sweeps, no augmentation
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='Pack3DDetInputs', keys=['points'])
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
        test_mode=False,
        data_prefix=data_prefix,
        use_valid_flag=True,
        box_type_3d='LiDAR'))
val_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='NuScenesDataset',
        data_root=data_root,
        ann_file='nuscenes_infos_val.pkl',
        pipeline=test_pipeline,
        metainfo=metainfo,
        test_mode=True,
        data_prefix=data_prefix,
        box_type_3d='LiDAR'))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='NuScenesMetric',
    data_root=data_root,
    ann_file=data_root + 'nuscenes_infos_val.pkl',
    metric='bbox')
test_evaluator = val_evaluator

lr = 1e-3
optim_wrapper = dict(optimizer=dict(lr=lr), clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=2)]
train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=2)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', interval=1))
auto_scale_lr = dict(enable=False, base_batch_size=2)
