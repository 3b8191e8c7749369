"""nuScenes object categories, attributes and visibility levels used by the synthetic world.

Sizes are nuScenes-like mean box sizes (w, l, h) in metres. The category
names are nuScenes' own, so mmdet3d's ``NuScenesNameMapping`` maps them onto
its 10 detection classes.
"""
from collections import OrderedDict

# nuScenes v1.0 category names with their lidarseg indices.
CATEGORY_INDEX = OrderedDict([
    ('animal', 1), ('human.pedestrian.adult', 2), ('human.pedestrian.child', 3),
    ('human.pedestrian.construction_worker', 4), ('human.pedestrian.personal_mobility', 5),
    ('human.pedestrian.police_officer', 6), ('human.pedestrian.stroller', 7),
    ('human.pedestrian.wheelchair', 8), ('movable_object.barrier', 9),
    ('movable_object.debris', 10), ('movable_object.pushable_pullable', 11),
    ('movable_object.trafficcone', 12), ('static_object.bicycle_rack', 13),
    ('vehicle.bicycle', 14), ('vehicle.bus.bendy', 15), ('vehicle.bus.rigid', 16),
    ('vehicle.car', 17), ('vehicle.construction', 18), ('vehicle.emergency.ambulance', 19),
    ('vehicle.emergency.police', 20), ('vehicle.motorcycle', 21), ('vehicle.trailer', 22),
    ('vehicle.truck', 23),
])

# Mean (w, l, h) in metres of the categories the world places.
CATEGORY_SIZE = {
    'vehicle.car': (1.95, 4.6, 1.73),
    'vehicle.truck': (2.5, 6.9, 2.8),
    'vehicle.construction': (2.8, 6.4, 3.2),
    'vehicle.bus.rigid': (2.95, 11.2, 3.5),
    'vehicle.trailer': (2.9, 12.3, 3.9),
    'movable_object.barrier': (2.5, 0.5, 0.98),
    'vehicle.motorcycle': (0.77, 2.1, 1.47),
    'vehicle.bicycle': (0.6, 1.7, 1.28),
    'human.pedestrian.adult': (0.67, 0.73, 1.77),
    'movable_object.trafficcone': (0.41, 0.41, 1.07),
}

# Material code of each placed category (see shading.py).
CATEGORY_MATERIAL = {
    'vehicle.car': 'vehicle', 'vehicle.truck': 'vehicle', 'vehicle.construction': 'vehicle',
    'vehicle.bus.rigid': 'vehicle', 'vehicle.trailer': 'vehicle',
    'movable_object.barrier': 'barrier', 'vehicle.motorcycle': 'cycle',
    'vehicle.bicycle': 'cycle', 'human.pedestrian.adult': 'pedestrian',
    'movable_object.trafficcone': 'cone',
}

ATTRIBUTES = OrderedDict([
    ('vehicle.moving', 'Vehicle is moving.'),
    ('vehicle.stopped', 'Vehicle, with a driver/rider in/on it, is currently stationary but has an '
                        'intent to move.'),
    ('vehicle.parked', 'Vehicle is stationary (usually for longer duration) with no immediate '
                       'intent to move.'),
    ('cycle.with_rider', 'There is a rider on the bicycle or motorcycle.'),
    ('cycle.without_rider', 'There is NO rider on the bicycle or motorcycle.'),
    ('pedestrian.sitting_lying_down', 'The human is sitting or lying down.'),
    ('pedestrian.standing', 'The human is standing.'),
    ('pedestrian.moving', 'The human is moving.'),
])

# Visibility token -> (level, description), as in nuScenes.
VISIBILITY_LEVELS = OrderedDict([
    ('1', ('v0-40', 'visibility of whole object is between 0 and 40%')),
    ('2', ('v40-60', 'visibility of whole object is between 40 and 60%')),
    ('3', ('v60-80', 'visibility of whole object is between 60 and 80%')),
    ('4', ('v80-100', 'visibility of whole object is between 80 and 100%')),
])


def visibility_token(fraction: float) -> str:
    """nuScenes visibility token ('1'..'4') of a visible fraction in [0, 1]."""
    if fraction > 0.8:
        return '4'
    if fraction > 0.6:
        return '3'
    if fraction > 0.4:
        return '2'
    return '1'
