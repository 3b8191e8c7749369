# Tiny camera-only BEV map segmentation whose image encoder is MIM4D's, for
# the MIM4D -> BEV segmentation transfer on the CPU on the synthetic world.
# The data, map labels, metric, decoder-free schedule and optimiser are those of
# the tiny camera-only BEVFusionSeg config
# (bevfusionseg_cam_r18-lss_second_secfpn_1xb1-2e_synthetic-seg.py); the model
# is BEVDetSeg: BEVDet's camera encoder (configs/_base_/models/
# bevdet-r50_image-encoder.py, the image side MIM4D pre-trains, with the tiny
# MIM4D sizes of projects/MIM4D/configs/mim4d_r18-lss_temporal-neus_1xb1-2e_
# synthetic-pretrain.py: ResNet-18 stages 3-4, CustomFPN -> 64 channels at
# stride 16, 16 depth bins of 3 m from 1 m, 64x176 images), so a MIM4D
# checkpoint converted with --dst-layout bevdet loads strictly into its
# img_backbone / img_neck / img_view_transformer.depthnet; then BEVDet's LSS
# pooling onto 0.75 m pillars over +-24 m (64 x 64), BEVDet's BEV encoder (as the
# tiny BEVDet detector, 16 -> 32 channels) and the BEVFusion map head resampling
# the (B, C, Y, X) map onto the labels' 0.5 m cells (96 x 96).
# Not the paper's MIM4D segmentation model (the MIM4D paper's +8.7 IoU is not
# measured with BEVDet; see projects/BEVSeg/README.md).
_base_ = ['./bevfusionseg_cam_r18-lss_second_secfpn_1xb1-2e_synthetic-seg.py']
custom_imports = dict(
    imports=['projects.BEVDetCompat.bevdet_compat', 'projects.BEVSeg.bevseg'],
    allow_failed_imports=False)

input_size = (64, 176)
grid_config = dict(
    x=[-24.0, 24.0, 0.75],  # 64 cells: the BEV encoder needs a multiple of 8
    y=[-24.0, 24.0, 0.75],
    z=[-5.0, 3.0, 8.0],
    depth=[1.0, 49.0, 3.0],  # MIM4D tiny dbound: 16 bins, the depth net converts strictly
)
num_bev_channels = 16  # MIM4D tiny context channels
bev_scope = [grid_config['x'], grid_config['y']]
label_scope = [[-24.0, 24.0, 0.5], [-24.0, 24.0, 0.5]]

model = dict(
    _delete_=True,
    type='BEVDetSeg',
    data_preprocessor=dict(
        type='Det3DDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=16),
    img_backbone=dict(
        type='mmdet.ResNet',
        depth=18,
        num_stages=4,
        out_indices=(2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        with_cp=False,
        style='pytorch',
        init_cfg=None),
    img_neck=dict(
        type='BEVDetCustomFPN',
        in_channels=[256, 512],
        out_channels=64,
        num_outs=1,
        start_level=0,
        out_ids=[0]),
    img_view_transformer=dict(
        type='BEVDetLSSViewTransformer',
        grid_config=grid_config,
        input_size=input_size,
        downsample=16,
        in_channels=64,
        out_channels=num_bev_channels),
    img_bev_encoder_backbone=dict(
        type='BEVDetCustomResNet',
        numC_input=num_bev_channels,
        num_channels=[num_bev_channels * 2, num_bev_channels * 4, num_bev_channels * 8]),
    img_bev_encoder_neck=dict(
        type='BEVDetFPNLSS',
        in_channels=num_bev_channels * 8 + num_bev_channels * 2,
        out_channels=32),
    seg_head=dict(
        type='BEVFusionSegHead',
        in_channels=32,
        grid_transform=dict(input_scope=bev_scope, output_scope=label_scope, input_axes='yx'),
        classes={{_base_.map_classes}},
        loss='focal'))

meta_keys = ('sample_idx', 'token', 'img_path', 'ori_shape', 'img_shape', 'pad_shape',
             'box_type_3d', 'num_views', 'cam2img', 'lidar2cam', 'img_aug_matrix')
# BEVDet's test-time image resize (deterministic, any world width -> 176 px)
train_pipeline = [
    dict(type='LoadMultiViewImageFromFiles', to_float32=True, color_type='color',
         num_views=6),
    dict(type='LoadBEVMapLabel', output_scope=label_scope),
    dict(type='BEVDetImageAug', final_size=input_size, test_mode=True),
    dict(type='PackBEVSegInputs', keys=['img'], meta_keys=meta_keys)
]
test_pipeline = train_pipeline
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
