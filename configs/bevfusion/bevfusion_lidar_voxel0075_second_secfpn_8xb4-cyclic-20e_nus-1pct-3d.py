# Label-efficient baseline: the stock BEVFusion recipe on 1 % of the nuScenes
# training scenes (nuscenes_infos_train_1pct.pkl from tools/create_data.py
# --subsets). The stock config is read from MMDET3D_ROOT (an mmdetection3d
# checkout; default ../mmdetection3d beside this repository).
_base_ = ['{{$MMDET3D_ROOT:../../../mmdetection3d}}/projects/BEVFusion/configs/bevfusion_lidar_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py']

train_dataloader = dict(dataset=dict(dataset=dict(ann_file='nuscenes_infos_train_1pct.pkl')))
# ObjectSample pastes objects of this subset's frames only (no label leakage):
# tools/create_data.py writes nuscenes_dbinfos_train_1pct.pkl beside the stock database.
gt_database_subset = 'nuscenes_dbinfos_train_1pct.pkl'
