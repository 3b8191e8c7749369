# Tiny sibling of bevfusionseg_cam_swint-lss_second_secfpn_8xb4-cyclic-20e_nus-seg.py
# (camera only) that trains on the CPU on the synthetic world, shrunk as the
# tiny C+L config (bevfusionseg_lidar-cam_r18-lss_second_secfpn_1xb1-2e_synthetic-seg.py)
# shrinks its paper config. The camera encoder has exactly the sizes of NS-MAE's
# tiny camera-only pre-training
# (projects/NSMAE/configs/nsmae_r18-lss_1xb1-2e_synthetic-pretrain.py: ResNet-18,
# 32/16 channels, 39 depth bins, 64x176 images, 1.2 m BEV cells over +-24 m,
# no LiDAR depth prior), so its checkpoint converted with
# --dst-layout bevseg-camera loads strictly into it. Decoder SECOND (16 -> 32, 64)
# + SECONDFPN (-> 64) on the 20 x 20 BEV of 2.4 m cells; the map head
# resamples it onto the labels' 0.5 m cells cropped to +-24 m (96 x 96).
_base_ = ['./bevfusionseg_cam_swint-lss_second_secfpn_8xb4-cyclic-20e_nus-seg.py']

image_size = [64, 176]
feature_size = [8, 22]
dbound = [1.0, 40.0, 1.0]
bev_scope = [[-24.0, 24.0, 2.4], [-24.0, 24.0, 2.4]]
label_scope = [[-24.0, 24.0, 0.5], [-24.0, 24.0, 0.5]]
data_root = 'data/synthetic/'
# NuScenesDataset's class default is v1.0-trainval; the synthetic world is v1.0-mini
metainfo = dict(version='v1.0-mini')

model = dict(
    data_preprocessor=dict(pad_size_divisor=8),
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
    pts_backbone=dict(in_channels=16, out_channels=[32, 64], layer_nums=[1, 1]),
    pts_neck=dict(in_channels=[32, 64], out_channels=[32, 32]),
    seg_head=dict(
        in_channels=64,
        grid_transform=dict(input_scope=bev_scope, output_scope=label_scope)))

# Images are resized relative to their width (resize_relative), so any
# synthetic world resolution becomes 176x64.
train_pipeline = [
    dict(type='LoadMultiViewImageFromFiles', to_float32=True, color_type='color',
         num_views=6),
    dict(type='LoadBEVMapLabel', output_scope=label_scope),
    dict(type='BEVFusionCompatImageAug3D', final_dim=image_size, resize_lim=[1.0, 1.0],
         resize_relative=True, bot_pct_lim=[0.0, 0.0], is_train=False),
    dict(type='PackBEVSegInputs', keys=['img'], meta_keys={{_base_.meta_keys}})
]
test_pipeline = train_pipeline
train_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='nuscenes_infos_train.pkl',
        metainfo=metainfo,
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='nuscenes_infos_val.pkl',
        metainfo=metainfo,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 2
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=2)]
optim_wrapper = dict(optimizer=dict(lr=2e-3))
auto_scale_lr = dict(enable=False, base_batch_size=1)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
