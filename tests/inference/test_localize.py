import math

import torch

from avsa.cli import main
from avsa.evaluate.crops_figure import mean_intensity_direction
from avsa.evaluate.localization import localization_hit_rate
from avsa.inference.localize import alignment_map, draw_heatmap, peak_direction
from avsa.inference.pretrained import load_pretrained
from avsa.media.cache import Cache
from avsa.spatial import sphere


def test_grid_directions_map_to_the_right_place(tiny_run):
    p = load_pretrained(tiny_run)
    target = (math.radians(-95), math.radians(15))

    def score(az, el, frames, foa):
        return -sphere.angular_distance(az, el, *target)

    scores, az, el = alignment_map(p, torch.zeros(8, 3, 64, 128, dtype=torch.uint8), torch.zeros(4, 24000),
                                   grid=(72, 13), score_fn=score)
    pa, pe = peak_direction(scores, az, el)
    assert sphere.angular_distance(pa, pe, *target) < math.radians(6)


def test_model_scores_cover_the_grid_and_the_heatmap_is_drawn(tiny_run, synthetic_cache, tmp_path):
    p = load_pretrained(tiny_run)
    frames = torch.randint(0, 255, (8, 3, 64, 128), dtype=torch.uint8)
    scores, az, el = alignment_map(p, frames, torch.randn(4, 24000) * 0.1, grid=(8, 3))
    assert scores.shape == (3, 8) and torch.isfinite(scores).all()
    png = draw_heatmap(tmp_path / "h.png", frames[4].permute(1, 2, 0).numpy(), scores, az, el)
    assert png.stat().st_size > 5000
    clip = Cache(synthetic_cache).clips("test")[0]
    out = tmp_path / "cli.png"
    assert main(["localize", str(tiny_run), str(synthetic_cache / clip.video), "--grid", "8x3", "--out", str(out)]) == 0
    assert out.stat().st_size > 5000


def test_localize_writes_to_the_current_folder_and_never_overwrites(tiny_run, synthetic_cache, tmp_path,
                                                                    monkeypatch, capsys):
    clip = Cache(synthetic_cache).clips("test")[0]
    video = synthetic_cache / clip.video
    before = sorted(p.name for p in video.parent.iterdir())
    monkeypatch.chdir(tmp_path)
    assert main(["localize", str(tiny_run), str(video), "--grid", "8x3"]) == 0
    png = tmp_path / f"{video.stem}-localization.png"
    assert png.stat().st_size > 5000
    assert sorted(p.name for p in video.parent.iterdir()) == before  # nothing written beside the data
    png.write_bytes(b"keep me")
    assert main(["localize", str(tiny_run), str(video), "--grid", "8x3"]) == 1
    assert "--overwrite" in capsys.readouterr().err and png.read_bytes() == b"keep me"
    assert main(["localize", str(tiny_run), str(video), "--grid", "8x3", "--overwrite"]) == 0
    assert png.stat().st_size > 5000 and sorted(p.name for p in tmp_path.iterdir()) == [png.name]


def test_an_intensity_oracle_finds_the_sounding_objects(tiny_run, synthetic_cache):
    """The hit-rate machinery on the synthetic world, scored by the FOA intensity direction."""

    def oracle(az, el, frames, foa):
        iaz, iel, _ = mean_intensity_direction(foa[None], 24000)
        return -sphere.angular_distance(az, el, iaz[0], iel[0])

    r = localization_hit_rate(load_pretrained(tiny_run), synthetic_cache, split="train", grid=(72, 13),
                              max_angle=math.radians(25), score_fn=oracle)
    assert r.n >= 8 and r.value >= 0.6, r
    # chance = share of the grid near a sounding object: small, and far below the intensity oracle
    assert 0.0 < r.chance < 0.3 and r.value > 2 * r.chance
