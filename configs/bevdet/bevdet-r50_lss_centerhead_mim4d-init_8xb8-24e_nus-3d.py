# BEVDet-R50 (BEVDet-compatible detector, projects/BEVDetCompat) whose image
# backbone, neck and depth net start from MIM4D pre-training. Make the
# checkpoint with
#   python tools/model_converters/convert_checkpoint.py \
#       work_dirs/mim4d_r50-lss_temporal-neus_8xb1-12e_nus-pretrain/epoch_12.pth \
#       checkpoints/mim4d_r50_to_bevdet.pth --src-layout mim4d --dst-layout bevdet \
#       --strict --target-config configs/bevdet/<this file>
# The ImageNet init of the stock config is switched off: load_from brings the backbone.
_base_ = ['./bevdet-r50_lss_centerhead_8xb8-24e_nus-3d.py']

model = dict(img_backbone=dict(init_cfg=None))
load_from = 'checkpoints/mim4d_r50_to_bevdet.pth'
