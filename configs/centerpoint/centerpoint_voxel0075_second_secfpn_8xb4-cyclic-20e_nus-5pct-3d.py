# Label-efficient baseline from scratch: stock CenterPoint on 5 % of the
# nuScenes training scenes (nuscenes_infos_train_5pct.pkl from tools/create_data.py --subsets).
_base_ = ['mmdet3d::centerpoint/centerpoint_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py']

train_dataloader = dict(dataset=dict(dataset=dict(ann_file='nuscenes_infos_train_5pct.pkl')))
# ObjectSample pastes objects of this subset's frames only (no label leakage):
# tools/create_data.py writes nuscenes_dbinfos_train_5pct.pkl beside the stock database.
gt_database_subset = 'nuscenes_dbinfos_train_5pct.pkl'
