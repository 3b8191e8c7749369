# Tiny CPU sibling of the BEVDet-R50 config: same architecture, shrunk
# (ResNet-18, 64x176 input, 16 depth bins, 1.6 m BEV cells, thin BEV
# encoder and head) to train on the synthetic world
# (render_pretrain.synthetic.generate_world, 176x64 images) with info files
# from tools/create_data.py (tag 'nuscenes'). Only sizes change; every
# module type is inherited.
_base_ = ['./bevdet-r50_lss_centerhead_8xb8-24e_nus-3d.py']

input_size = (64, 176)
grid_config = dict(
    x=[-51.2, 51.2, 1.6],
    y=[-51.2, 51.2, 1.6],
    z=[-5.0, 3.0, 8.0],
    # 16 bins of 3 m: the depth net of the tiny MIM4D config
    # (mim4d_r18-..._synthetic-pretrain.py, dbound [1, 49, 3]) converts strictly
    depth=[1.0, 49.0, 3.0],
)
num_bev_channels = 16
out_size_factor = 16  # 0.1 m target voxels -> 1.6 m head cells (64 x 64)

model = dict(
    data_preprocessor=dict(pad_size_divisor=16),
    img_backbone=dict(depth=18, with_cp=False, init_cfg=None),
    img_neck=dict(in_channels=[256, 512], out_channels=64),
    img_view_transformer=dict(
        grid_config=grid_config, input_size=input_size, in_channels=64,
        out_channels=num_bev_channels),
    img_bev_encoder_backbone=dict(
        numC_input=num_bev_channels,
        num_channels=[num_bev_channels * 2, num_bev_channels * 4, num_bev_channels * 8]),
    img_bev_encoder_neck=dict(
        in_channels=num_bev_channels * 8 + num_bev_channels * 2, out_channels=32),
    pts_bbox_head=dict(
        in_channels=32,
        share_conv_channel=16,
        bbox_coder=dict(out_size_factor=out_size_factor),
        separate_head=dict(head_conv=16)),
    train_cfg=dict(pts=dict(out_size_factor=out_size_factor, max_objs=100)),
    test_cfg=dict(pts=dict(out_size_factor=out_size_factor, max_per_img=100,
                           pre_max_size=200, post_max_size=100)))

data_root = 'data/synthetic/'
# the synthetic world is a v1.0-mini layout (NuScenesMetric reads the version)
metainfo = dict(classes={{_base_.class_names}}, version='v1.0-mini')
train_pipeline = [
    dict(type='LoadMultiViewImageFromFiles', to_float32=True, color_type='color',
         num_views={{_base_.num_views}}),
    dict(type='BEVDetImageAug', final_size=input_size, resize_lim=(-0.02, 0.04),
         bot_pct_lim=(0.0, 0.0), rot_lim=(-2.0, 2.0), rand_flip=True),
    dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True, with_attr_label=False),
    dict(type='BEVDetBEVAug', rot_lim=(-22.5, 22.5), scale_lim=(0.95, 1.05),
         flip_dx_ratio=0.5, flip_dy_ratio=0.5),
    dict(type='ObjectRangeFilter', point_cloud_range={{_base_.point_cloud_range}}),
    dict(type='ObjectNameFilter', classes={{_base_.class_names}}),
    dict(type='Pack3DDetInputs', keys=['img', 'gt_bboxes_3d', 'gt_labels_3d'],
         meta_keys={{_base_.meta_keys}}),
]
test_pipeline = [
    dict(type='LoadMultiViewImageFromFiles', to_float32=True, color_type='color',
         num_views={{_base_.num_views}}),
    dict(type='BEVDetImageAug', final_size=input_size, test_mode=True),
    dict(type='Pack3DDetInputs', keys=['img'], meta_keys={{_base_.meta_keys}}),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='nuscenes_infos_train.pkl',
                 pipeline=train_pipeline, metainfo=metainfo))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='nuscenes_infos_val.pkl',
                 pipeline=test_pipeline, metainfo=metainfo))
test_dataloader = val_dataloader
val_evaluator = dict(data_root=data_root, ann_file=data_root + 'nuscenes_infos_val.pkl')
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=2, milestones=[2], gamma=0.1),
]
train_cfg = dict(max_epochs=2, val_interval=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=1))
