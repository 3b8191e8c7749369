# NS-MAE pre-training, LiDAR only: the C+L config without the camera branch.
# Only the BEV (masked-out voxel first-hit height) target is rendered.
_base_ = ['./nsmae_swint-lss_second_8xb2-cyclic-50e_nus-pretrain.py']

model = dict(
    data_preprocessor=dict(mean=None, std=None, bgr_to_rgb=False),
    img_backbone=None,
    img_neck=None,
    view_transform=None,
    fusion_layer=None,
    img_masker=None,
    pv_render_head=None,
    bev_render_head=dict(in_channels=256))

train_pipeline = [
    dict(
        type='LoadPointsFromFile',
        coord_type='LIDAR',
        load_dim=5,
        use_dim=5,
        backend_args={{_base_.backend_args}}),
    dict(
        type='LoadPointsFromMultiSweeps',
        sweeps_num=9,
        load_dim=5,
        use_dim=5,
        pad_empty_sweeps=True,
        remove_close=True,
        backend_args={{_base_.backend_args}}),
    dict(
        type='PointsRangeFilter',
        point_cloud_range={{_base_.point_cloud_range}}),
    dict(
        type='Pack3DDetInputs',
        keys=['points'],
        meta_keys=('lidar_aug_matrix', 'num_pts_feats', 'sample_idx',
                   'lidar_path', 'token', 'box_type_3d', 'pcd_rotation',
                   'pcd_scale_factor', 'pcd_trans', 'pcd_horizontal_flip',
                   'pcd_vertical_flip', 'transformation_3d_flow'))
]
train_dataloader = dict(
    dataset=dict(
        pipeline=train_pipeline,
        modality=dict(use_lidar=True, use_camera=False)))
val_dataloader = dict(
    dataset=dict(
        pipeline=train_pipeline,  # no random augmentation in it
        modality=dict(use_lidar=True, use_camera=False)))
test_dataloader = val_dataloader
# No LiDAR-encoder freeze: with the camera branch gone it would stop the
# whole encoder (the released early_stop_epoch belongs to the C+L run).
custom_hooks = [
    dict(type='SeededRandomnessHook'),
    dict(type='NSMAERenderVisualizationHook', interval=1000, max_samples=1)
]
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel', find_unused_parameters=False)
