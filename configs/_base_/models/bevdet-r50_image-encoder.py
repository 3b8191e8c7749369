# BEVDet-R50's image side (HuangJunJie2017/BEVDet configs/bevdet/bevdet-r50.py):
# ImageNet-normalised RGB padded to a multiple of 32, ResNet-50 (torchvision
# ImageNet init, stages 3 and 4, gradient checkpointing) and BEVDet's
# CustomFPN (1024 + 2048 -> 512 channels at stride 16). Shared by the BEVDet
# detector and MIM4D pre-training, so that MIM4D's img_backbone / img_neck
# load strictly into BEVDet. A config adds the detector type and the rest.
model = dict(
    data_preprocessor=dict(
        type='Det3DDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    img_backbone=dict(
        type='mmdet.ResNet',
        depth=50,
        num_stages=4,
        out_indices=(2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        with_cp=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    img_neck=dict(
        type='BEVDetCustomFPN',
        in_channels=[1024, 2048],
        out_channels=512,
        num_outs=1,
        start_level=0,
        out_ids=[0]))
