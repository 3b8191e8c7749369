# mmdet3d's BEVFusion (projects/BEVFusion, camera + LiDAR) whose encoders start
# from NS-MAE pre-training: img_backbone, img_neck, view_transform,
# pts_middle_encoder and fusion_layer (the stock recipe instead starts from a
# LiDAR-only BEVFusion checkpoint and ImageNet Swin weights).
#
# The stock config lives in an mmdetection3d checkout (v1.4.0), not in the
# mmdet3d wheel: set MMDET3D_ROOT to it (default: ../mmdetection3d beside this
# repository). Its custom_imports (projects.BEVFusion.bevfusion, with the
# project's compiled ops) must import, so train from the checkout's root or
# with tools/train.py, which puts MMDET3D_ROOT on sys.path.
#
# Make the checkpoint with
#   python tools/model_converters/convert_checkpoint.py \
#       work_dirs/nsmae_swint-lss_second_8xb2-cyclic-50e_nus-pretrain/epoch_50.pth \
#       checkpoints/nsmae_swint-lss_second_to_bevfusion.pth \
#       --src-layout nsmae --dst-layout mmdet3d-bevfusion --strict \
#       --target-manifest <manifest of the stock model, or --target-config this file>
_base_ = ['{{$MMDET3D_ROOT:../../../mmdetection3d}}/projects/BEVFusion/configs/bevfusion_lidar-cam_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py']

# load_from brings the Swin backbone too: no ImageNet download.
model = dict(img_backbone=dict(init_cfg=None))
load_from = 'checkpoints/nsmae_swint-lss_second_to_bevfusion.pth'
