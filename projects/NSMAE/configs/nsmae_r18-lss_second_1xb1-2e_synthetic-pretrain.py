# Tiny sibling of nsmae_swint-lss_second_8xb2-cyclic-50e_nus-pretrain.py that
# trains on CPU on the synthetic world: ResNet-18, small channels, a +-24 m
# grid, 64x176 images, 39 depth bins. Only sizes change.
_base_ = ['./nsmae_swint-lss_second_8xb2-cyclic-50e_nus-pretrain.py']

point_cloud_range = [-24.0, -24.0, -5.0, 24.0, 24.0, 3.0]
voxel_size = [0.3, 0.3, 0.2]
sparse_shape = [160, 160, 41]
image_size = [64, 176]
feature_size = [8, 22]
dbound = [1.0, 40.0, 1.0]
data_root = 'data/synthetic/'

model = dict(
    data_preprocessor=dict(
        pad_size_divisor=8,
        voxel_layer=dict(
            point_cloud_range=point_cloud_range,
            voxel_size=voxel_size,
            max_voxels=(20000, 20000))),
    img_backbone=dict(
        _delete_=True,
        type='mmdet.ResNet',
        depth=18,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    img_neck=dict(in_channels=[128, 256, 512], out_channels=32),
    view_transform=dict(
        in_channels=32,
        out_channels=16,
        image_size=image_size,
        feature_size=feature_size,
        xbound=[-24.0, 24.0, 1.2],
        ybound=[-24.0, 24.0, 1.2],
        dbound=dbound),
    pts_middle_encoder=dict(
        # Stock SECOND channels (base 16, output 128) so that the encoder
        # converts into the tiny CenterPoint config's SparseEncoder shape
        # for shape (configs/centerpoint/...synthetic-3d.py).
        sparse_shape=sparse_shape),
    fusion_layer=dict(in_channels=[16, 256], out_channels=32),
    pv_render_head=dict(in_channels=16, dbound=dbound),
    bev_render_head=dict(in_channels=32),
    # Balanced on the synthetic world: RGB MSE ~0.05, PV depth L1 ~10 m,
    # BEV height L1 ~1 m at initialisation -> each weighted term ~0.5-1.
    loss_weights=dict(rgb=20.0, pv_depth=0.1, bev_depth=0.5))

train_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='LoadMultiViewImageFromFiles', to_float32=True,
         color_type='color', num_views=6),
    dict(type='BEVFusionCompatImageAug3D', final_dim=image_size, resize_lim=[1.0, 1.0],
         resize_relative=True, bot_pct_lim=[0.0, 0.0], is_train=False),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='Pack3DDetInputs', keys=['points', 'img'],
         meta_keys={{_base_.meta_keys}})
]
train_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='nuscenes_infos_train.pkl',
        pipeline=train_pipeline))

# Held-out render quality (RenderQualityMetric) after every epoch; the
# pipeline above draws nothing at random, so validation uses it as it is.
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='nuscenes_infos_val.pkl',
        pipeline=train_pipeline))
test_dataloader = val_dataloader

max_epochs = 2
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=2)
]
optim_wrapper = dict(optimizer=dict(lr=1e-3))
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
custom_hooks = [
    dict(type='SeededRandomnessHook'),
    dict(type='NSMAERenderVisualizationHook', interval=10, max_samples=1)
]
env_cfg = dict(dist_cfg=dict(backend='gloo'))
