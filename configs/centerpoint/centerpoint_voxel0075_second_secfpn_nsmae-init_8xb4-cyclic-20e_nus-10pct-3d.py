# Label-efficient fine-tuning: 10 % of the nuScenes training scenes
# (nuscenes_infos_train_10pct.pkl from tools/create_data.py --subsets), NS-MAE init.
_base_ = ['./centerpoint_voxel0075_second_secfpn_nsmae-init_8xb4-cyclic-20e_nus-3d.py']

train_dataloader = dict(dataset=dict(dataset=dict(ann_file='nuscenes_infos_train_10pct.pkl')))
# ObjectSample pastes objects of this subset's frames only (no label leakage):
# tools/create_data.py writes nuscenes_dbinfos_train_10pct.pkl beside the stock database.
gt_database_subset = 'nuscenes_dbinfos_train_10pct.pkl'
