# BEV map segmentation, camera only, from scratch: the C+L config without the
# LiDAR branch (no points loaded; the LSS depth prior gets zeros,
# depth_input='none', as NS-MAE's camera-only pre-training). Decoder: SECOND
# on the 80-channel camera BEV + SECONDFPN to 256 channels, so the map head
# has the shape of BEVFusion's camera-only one (in_channels 256; BEVFusion's
# camera seg decoder, GeneralizedResNet + LSSFPN, is not in mmdet3d 1.x).
_base_ = ['./bevfusionseg_lidar-cam_swint-lss_second_secfpn_8xb4-cyclic-20e_nus-seg.py']

input_modality = dict(use_lidar=False, use_camera=True)
model = dict(
    data_preprocessor=dict(voxel=False, voxel_layer=None),
    pts_voxel_encoder=None,
    pts_middle_encoder=None,
    fusion_layer=None,
    pts_backbone=dict(in_channels=80),
    pts_neck=dict(out_channels=[128, 128]),
    seg_head=dict(in_channels=256),
    depth_input='none')

train_pipeline = [
    dict(type='LoadMultiViewImageFromFiles', to_float32=True, color_type='color',
         num_views=6),
    dict(type='LoadBEVMapLabel', classes={{_base_.map_classes}},
         output_scope={{_base_.label_scope}}),
    dict(type='BEVFusionCompatImageAug3D', final_dim={{_base_.image_size}}, resize_lim=[0.38, 0.55],
         bot_pct_lim=[0.0, 0.0], rot_lim=[-5.4, 5.4], rand_flip=True, is_train=True),
    dict(type='PackBEVSegInputs', keys=['img'], meta_keys={{_base_.meta_keys}})
]
test_pipeline = [
    dict(type='LoadMultiViewImageFromFiles', to_float32=True, color_type='color',
         num_views=6),
    dict(type='LoadBEVMapLabel', classes={{_base_.map_classes}},
         output_scope={{_base_.label_scope}}),
    dict(type='BEVFusionCompatImageAug3D', final_dim={{_base_.image_size}}, resize_lim=[0.48, 0.48],
         bot_pct_lim=[0.0, 0.0], is_train=False),
    dict(type='PackBEVSegInputs', keys=['img'], meta_keys={{_base_.meta_keys}})
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline, modality=input_modality))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline, modality=input_modality))
test_dataloader = val_dataloader
