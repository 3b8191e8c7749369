# Tiny sibling of nsmae_second_8xb2-cyclic-50e_nus-pretrain.py (LiDAR only)
# for CPU runs on the synthetic world: small grid.
_base_ = ['./nsmae_second_8xb2-cyclic-50e_nus-pretrain.py']

point_cloud_range = [-24.0, -24.0, -5.0, 24.0, 24.0, 3.0]
voxel_size = [0.3, 0.3, 0.2]
sparse_shape = [160, 160, 41]
data_root = 'data/synthetic/'

model = dict(
    data_preprocessor=dict(
        voxel_layer=dict(
            point_cloud_range=point_cloud_range,
            voxel_size=voxel_size,
            max_voxels=(20000, 20000))),
    pts_middle_encoder=dict(
        # Stock SECOND channels (base 16, output 128) so that the encoder
        # converts into the tiny CenterPoint config's SparseEncoder shape
        # for shape (configs/centerpoint/...synthetic-3d.py).
        sparse_shape=sparse_shape),
    bev_render_head=dict(in_channels=256),
    loss_weights=dict(bev_depth=0.5))

train_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='Pack3DDetInputs', keys=['points'],
         meta_keys=('lidar_aug_matrix', 'num_pts_feats', 'sample_idx',
                    'lidar_path', 'token', 'box_type_3d'))
]
train_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='nuscenes_infos_train.pkl',
        pipeline=train_pipeline))

max_epochs = 2
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=2)
]
optim_wrapper = dict(optimizer=dict(lr=1e-3))
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
custom_hooks = [
    dict(type='NSMAERenderVisualizationHook', interval=10, max_samples=1)
]
env_cfg = dict(dist_cfg=dict(backend='gloo'))
