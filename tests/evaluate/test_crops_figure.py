import math

import numpy as np
import torch

from avsa.evaluate.crops_figure import crops_figure, mean_intensity_direction
from avsa.spatial import ambisonics


def test_rotated_plane_wave_intensity_points_to_the_crop_centre_only_for_its_own_crop(tmp_path):
    rng = np.random.default_rng(0)
    az0, el0 = 1.2, 0.3
    foa = ambisonics.encode(torch.as_tensor(rng.standard_normal(24000), dtype=torch.float32), az0, el0)
    centres_az = torch.tensor([az0, az0 - 1.5, -2.0, 2.9])
    centres_el = torch.tensor([el0, 0.0, -0.2, 0.1])
    rotated = ambisonics.rotate_to_front(foa[None], centres_az, centres_el)
    az, el, length = mean_intensity_direction(rotated, 24000)
    assert abs(float(az[0])) < 0.02 and abs(float(el[0])) < 0.02  # the source's crop: front
    assert float(length[0]) > 0.98
    assert abs(float(az[1]) - 1.5) < 0.05  # the crop 1.5 rad to the right hears it 1.5 rad to the left

    frames = torch.randint(0, 255, (8, 3, 64, 128), dtype=torch.uint8)
    out = crops_figure(tmp_path / "crops.png", frames, foa, centres_az, centres_el, torch.full((4,), math.radians(60)),
                       kinds=["object", "random", "random", "random"], crop_size=32)
    assert out.stat().st_size > 10_000
