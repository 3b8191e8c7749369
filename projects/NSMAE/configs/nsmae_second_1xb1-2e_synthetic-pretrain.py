# Tiny sibling of nsmae_second_8xb2-cyclic-50e_nus-pretrain.py (LiDAR only)
# for CPU runs on the synthetic world: the tiny C+L config without the camera
# branch, as the paper-scale LiDAR config is the C+L one without it.
_base_ = ['./nsmae_r18-lss_second_1xb1-2e_synthetic-pretrain.py']

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
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='PointsRangeFilter', point_cloud_range={{_base_.point_cloud_range}}),
    dict(type='Pack3DDetInputs', keys=['points'],
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
        pipeline=train_pipeline,
        modality=dict(use_lidar=True, use_camera=False)))
test_dataloader = val_dataloader
