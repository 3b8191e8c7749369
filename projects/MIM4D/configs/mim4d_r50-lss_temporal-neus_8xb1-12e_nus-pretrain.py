# MIM4D pre-training (camera only, temporal): ResNet-50 + BEVDet CustomFPN
# (the exact image side of configs/bevdet/bevdet-r50_lss_centerhead_8xb8-24e_nus-3d.py,
# so img_backbone / img_neck transfer strictly), LSS depth net with BEVDet's 59
# bins (1..60 m, 1 m; the paper's 64 would stop the depth net transferring)
# lifted into a 180 x 180 x 5 volume (0.6 x 0.6 x 1.6 m over +-54 m x
# [-5, 3] m) reduced to 32 channels (Conv3d k3 + BN + ReLU), S = 3 camera
# sweeps (bi-temporal: the key frame and one random other sweep are predicted
# from the other frames), NeuS render head in scene-box units (1 / 54 m;
# 72 + 24 samples, 512 rays per camera) on the predicted AND the direct
# volumes. 256 x 704 images (0.5 scale + crop), 8 GPUs x 1 sample, AdamW 4e-4
# (image backbone x 0.1), 12 epochs. projects/MIM4D/README.md lists every
# value next to the paper / released one (tests/mim4d/test_paper_fidelity.py).
# Train: tools/dist_train.sh projects/MIM4D/configs/<this file> 8
# Shared parts (configs/_base_/): BEVDet-R50's image encoder, the nuScenes
# multi-view data and the runtime.
_base_ = [
    './_base_/models/bevdet-r50_image-encoder.py',
    './_base_/datasets/nus-multiview.py',
    './_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['projects.MIM4D.mim4d', 'projects.BEVDetCompat.bevdet_compat'],
    allow_failed_imports=False)

point_cloud_range = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
grid_shape = [180, 180, 5]  # X, Y, Z voxels (0.6, 0.6, 1.6 m)
image_size = [256, 704]
feature_stride = 16
dbound = [1.0, 60.0, 1.0]  # 59 depth bins over 1..60 m, as BEVDet-R50
num_sweeps = 3
volume_channels = 32
dataset_type = 'MIM4DNuScenesDataset'  # NuScenesDataset + its data_root per sample
info_prefix = 'nuscenes'

model = dict(
    type='MIM4D',
    view_transform=dict(
        type='MIM4DVolumeTransform',
        in_channels=512,
        context_channels=64,
        out_channels=volume_channels,
        image_size=image_size,
        feature_size=[image_size[0] // feature_stride, image_size[1] // feature_stride],
        dbound=dbound,
        point_cloud_range=point_cloud_range,
        grid_shape=grid_shape),
    img_masker=dict(type='MIM4DImageMasker', cell_size=32, mask_ratio=0.3),
    temporal_predictor=dict(
        type='MIM4DTemporalPredictor',
        channels=volume_channels,
        num_layers=2,
        num_heads=4,
        attention='deformable',  # MIM4D's deformable temporal cross-attention
        num_points=4),
    render_head=dict(
        type='MIM4DNeuSRenderHead',
        in_channels=volume_channels,
        aabb=point_cloud_range,
        scene_scale=None,  # render units = metres / max|aabb| (1 / 54), as released
        # released SDFDecoder(hidden 16, n_blocks 5) / RGBDecoder(hidden 16, n_blocks 3):
        # 6 and 4 linear layers; inverse std exp(10 * 0.3) per render unit
        field=dict(hidden_dim=16, num_layers=6, geo_feat_dim=16, color_hidden_dim=16,
                   color_num_layers=4, init_variance=0.3),
        rays_per_camera=512,
        lidar_fraction=1.0,
        min_depth=3.0,
        max_depth=50.0,
        horizon_fraction=0.3,
        near_plane=1.0,
        num_uniform=72,
        num_importance=24,
        num_upsample_steps=1,
        base_inv_s=64.0,  # per render unit
        loss_weights=dict(rgb=10.0, depth=10.0, eikonal=0.0)),
    target_frames=[0],
    bitemporal=True,  # released: targets [0, random k] in every training step
    direct_loss_weight=1.0,  # released: direct volumes rendered with the same weights
    vis_stride=8)

meta_keys = ('cam2img', 'lidar2cam', 'img_aug_matrix', 'sweep2lidar', 'sweep_time_offsets',
             'sweep_repeated', 'sweep_source', 'num_sweeps', 'num_cams', 'num_views',
             'camera_names', 'sample_idx', 'token', 'img_path', 'lidar_path', 'ori_shape',
             'img_shape', 'pad_shape', 'box_type_3d')
train_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5,
         backend_args=_base_.backend_args),
    # sweep paths are joined with the DATASET's data_root (MIM4DNuScenesDataset)
    dict(type='MIM4DLoadMultiViewSweeps', num_sweeps=num_sweeps, to_float32=True,
         backend_args=_base_.backend_args),
    dict(type='MIM4DSweepImageAug', final_dim=image_size, resize_lim=[0.47, 0.53],
         bot_pct_lim=[0.0, 0.0], rand_flip=True, is_train=True),
    dict(type='Pack3DDetInputs', keys=['points', 'img'], meta_keys=meta_keys)
]
test_pipeline = train_pipeline[:2] + [
    dict(type='MIM4DSweepImageAug', final_dim=image_size, resize_lim=[0.47, 0.53],
         bot_pct_lim=[0.0, 0.0], is_train=False),
] + train_pipeline[3:]

train_dataloader = dict(
    batch_size=1,
    dataset=dict(type=dataset_type, ann_file=f'{info_prefix}_infos_train.pkl',
                 pipeline=train_pipeline))
# Held-out pre-training quality: the key frame of each val sample is withheld,
# predicted from its sweeps and rendered on a pixel grid (predict); the
# RenderQualityMetric reports render/psnr (dB) and render/depth_abs_err (m, on
# pixels with LiDAR depth).
val_dataloader = dict(
    dataset=dict(type=dataset_type, ann_file=f'{info_prefix}_infos_val.pkl',
                 pipeline=test_pipeline))
val_evaluator = dict(type='RenderQualityMetric')
test_dataloader = val_dataloader
test_evaluator = val_evaluator

max_epochs = 12
lr = 4e-4
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=4)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={'img_backbone': dict(lr_mult=0.1)}),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=lr * 1e-3, begin=0,
         end=max_epochs, by_epoch=True, convert_to_iter_based=True)
]
auto_scale_lr = dict(enable=False, base_batch_size=8)

# SeededRandomnessHook: augmentation draws per (seed, rank, epoch, worker), masks and
# rays per (seed, rank, iteration): reproducible, different across workers / ranks,
# exact resume.
custom_hooks = [
    dict(type='SeededRandomnessHook'),
    dict(type='MIM4DRenderVisualizationHook', interval=1000, max_samples=1)
]
