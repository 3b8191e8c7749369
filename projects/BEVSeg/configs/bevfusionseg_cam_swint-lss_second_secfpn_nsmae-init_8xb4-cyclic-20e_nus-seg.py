# BEV map segmentation, camera only, initialised from NS-MAE (camera-only
# pre-training, nsmae_swint-lss_8xb2-cyclic-50e_nus-pretrain.py): img_backbone,
# img_neck and view_transform come from the converted checkpoint:
#   python tools/model_converters/convert_checkpoint.py work_dirs/nsmae_cam/epoch_50.pth \
#       checkpoints/nsmae_bevseg_camera.pth --src-layout nsmae --dst-layout bevseg-camera --strict \
#       --target-config projects/BEVSeg/configs/bevfusionseg_cam_swint-lss_second_secfpn_8xb4-cyclic-20e_nus-seg.py
_base_ = ['./bevfusionseg_cam_swint-lss_second_secfpn_8xb4-cyclic-20e_nus-seg.py']

model = dict(img_backbone=dict(init_cfg=None))
load_from = 'checkpoints/nsmae_bevseg_camera.pth'
