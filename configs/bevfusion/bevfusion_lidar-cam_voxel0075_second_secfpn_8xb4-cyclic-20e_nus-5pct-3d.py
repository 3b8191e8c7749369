# Label-efficient baseline: the stock BEVFusion recipe on 5 % of the nuScenes
# training scenes (nuscenes_infos_train_5pct.pkl from tools/create_data.py
# --subsets). The stock config is read from MMDET3D_ROOT (an mmdetection3d
# checkout; default ../mmdetection3d beside this repository).
_base_ = ['{{$MMDET3D_ROOT:../../../mmdetection3d}}/projects/BEVFusion/configs/bevfusion_lidar-cam_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py']

train_dataloader = dict(dataset=dict(dataset=dict(ann_file='nuscenes_infos_train_5pct.pkl')))
# ObjectSample pastes objects of this subset's frames only (no label leakage):
# tools/create_data.py writes nuscenes_dbinfos_train_5pct.pkl beside the stock database.
gt_database_subset = 'nuscenes_dbinfos_train_5pct.pkl'

# Two-stage recipe (as the stock C+L config, which starts from a LiDAR-only checkpoint), with
# every stage on this subset: (1) train bevfusion_lidar_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-5pct-3d.py,
# (2) train this config from its last checkpoint (Swin-T from ImageNet, as stock). The stock
# LiDAR-only checkpoint saw 100 % of the labels and must not be used here.
load_from = 'work_dirs/bevfusion_lidar_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-5pct-3d/epoch_20.pth'
