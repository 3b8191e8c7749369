# BEV map segmentation, camera + LiDAR, initialised from NS-MAE (C+L
# pre-training): the encoders (img_backbone, img_neck, view_transform,
# pts_middle_encoder, fusion_layer) come from a converted NS-MAE checkpoint;
# decoder and map head start from scratch. Convert first:
#   python tools/model_converters/convert_checkpoint.py work_dirs/nsmae/epoch_50.pth \
#       checkpoints/nsmae_bevseg.pth --src-layout nsmae --dst-layout bevseg --strict \
#       --target-config projects/BEVSeg/configs/bevfusionseg_lidar-cam_swint-lss_second_secfpn_8xb4-cyclic-20e_nus-seg.py
_base_ = ['./bevfusionseg_lidar-cam_swint-lss_second_secfpn_8xb4-cyclic-20e_nus-seg.py']

# the converted weights replace the ImageNet Swin-T initialisation
model = dict(img_backbone=dict(init_cfg=None))
load_from = 'checkpoints/nsmae_bevseg.pth'
