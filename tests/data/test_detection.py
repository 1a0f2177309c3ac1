"""Detections on the sphere: runners map boxes to the right directions, files round-trip."""

import json
import math

import numpy as np
import pytest
from scipy import ndimage

from avsa.data.detection.base import (Box2D, Detection, load_detections, save_detections,
                                      spherical_nms)
from avsa.data.detection.equirect import EquirectRunner
from avsa.data.detection.oracle import GroundTruthOracle
from avsa.data.detection.precomputed import PrecomputedDetections, write_precomputed_csv
from avsa.data.detection.recall import recall_of_sounding_objects
from avsa.data.detection.tiles import TileRunner, tile_centres, tile_pixel_directions
from avsa.errors import InputError, MediaError
from avsa.media.groundtruth import GroundTruth, ObjectTrack
from avsa.spatial import sphere
from avsa.spatial.projection import gnomonic_rays

RAD = math.pi / 180


class RedMarkerDetector:
    """Fake 2-D detector: one box per connected region of pure-red pixels."""

    name = "red"

    def __init__(self):
        self.calls = 0
        self.boxes = 0

    def detect_image(self, image):
        self.calls += 1
        mask = (image[..., 0] > 200) & (image[..., 1] < 60) & (image[..., 2] < 60)
        labels, n = ndimage.label(mask)
        out = [Box2D(float(xs.start), float(ys.start), float(xs.stop), float(ys.stop), "marker", 0.9)
               for ys, xs in ndimage.find_objects(labels)]
        self.boxes += len(out)
        return out


def marker_frame(markers, width=512):
    """Equirect frame, grey, with red discs of angular radius r at (az, el): independent renderer."""
    h = width // 2
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(h) + 0.5)
    az, el = (np.asarray(t) for t in sphere.equirect_to_direction(u, v, width, h))
    frame = np.full((h, width, 3), 90, np.uint8)
    for a0, e0, r in markers:
        d = np.asarray(sphere.angular_distance(az, el, a0, e0))
        frame[d <= r] = (255, 0, 0)
    return frame


def az_err(a, b):
    return abs((a - b + math.pi) % (2 * math.pi) - math.pi)


def test_equirect_runner_maps_boxes_to_directions_and_sizes():
    markers = [(40 * RAD, 20 * RAD, 8 * RAD), (-100 * RAD, -35 * RAD, 6 * RAD), (0.0, 0.0, 10 * RAD)]
    dets = EquirectRunner(RedMarkerDetector()).detect_frame(marker_frame(markers), time_s=0.5)
    assert len(dets) == 3
    for a0, e0, r in markers:
        d = min(dets, key=lambda d: az_err(d.azimuth, a0) + abs(d.elevation - e0))
        assert az_err(d.azimuth, a0) < 1.0 * RAD and abs(d.elevation - e0) < 1.0 * RAD
        assert abs(d.size - 2 * r) < 2.0 * RAD  # angular width on the sphere, not on the frame
        assert d.time_s == 0.5 and d.label == "marker"


def test_equirect_runner_sees_a_seam_straddling_object_once():
    frame = marker_frame([(179 * RAD, 5 * RAD, 8 * RAD)])
    dets = EquirectRunner(RedMarkerDetector()).detect_frame(frame, time_s=0.0)
    assert len(dets) == 1
    assert az_err(dets[0].azimuth, 179 * RAD) < 1.0 * RAD
    assert abs(dets[0].size - 16 * RAD) < 2.0 * RAD
    # without the circular padding the detector sees two halves
    halves = EquirectRunner(RedMarkerDetector(), seam_pad=0.0).detect_frame(frame, time_s=0.0)
    assert len(halves) == 2 and all(az_err(d.azimuth, 179 * RAD) > 2 * RAD for d in halves)


def test_equirect_runner_rejects_non_equirect_frames():
    with pytest.raises(InputError, match="W = 2H"):
        EquirectRunner(RedMarkerDetector()).detect_frame(np.zeros((100, 150, 3), np.uint8), time_s=0)


def test_tile_pixel_directions_agree_with_gnomonic_rays():
    size, fov = 17, 70 * RAD
    rays = np.asarray(gnomonic_rays(30 * RAD, -40 * RAD, fov, size), dtype=np.float64)
    j, i = np.meshgrid(np.arange(size), np.arange(size))
    az, el = tile_pixel_directions(j + 0.5, i + 0.5, azimuth=30 * RAD, elevation=-40 * RAD,
                                   fov=fov, size=size)
    d = np.asarray(sphere.direction_vector(az, el))
    assert np.abs(d - rays).max() < 1e-5


@pytest.mark.parametrize("tiles", ["overlap", "cube"])
def test_tile_runner_maps_markers_back_and_merges_duplicates(tiles):
    markers = [(40 * RAD, 20 * RAD, 7 * RAD), (175 * RAD, -10 * RAD, 6 * RAD), (-60 * RAD, 75 * RAD, 6 * RAD)]
    fake = RedMarkerDetector()
    dets = TileRunner(fake, tiles=tiles, size=160).detect_frame(marker_frame(markers, width=768), time_s=1.0)
    assert fake.calls == len(tile_centres(tiles))
    assert len(dets) == 3, [(d.azimuth / RAD, d.elevation / RAD) for d in dets]
    for a0, e0, r in markers:
        d = min(dets, key=lambda d: float(sphere.angular_distance(d.azimuth, d.elevation, a0, e0)))
        assert float(sphere.angular_distance(d.azimuth, d.elevation, a0, e0)) < 1.5 * RAD
        assert abs(d.size - 2 * r) < 3.0 * RAD
    if tiles == "overlap":
        assert fake.boxes > len(markers)  # seen in several tiles, merged to one each


def test_spherical_nms_keeps_distinct_objects_and_labels():
    a = Detection(0.0, 0.0, 0.2, "cat", 0.9, 0.0)
    dup = Detection(0.03, 0.01, 0.2, "cat", 0.5, 0.0)
    other_label = Detection(0.03, 0.01, 0.2, "dog", 0.5, 0.0)
    far = Detection(1.0, 0.0, 0.2, "cat", 0.4, 0.0)
    later = Detection(0.0, 0.0, 0.2, "cat", 0.4, 0.25)
    kept = spherical_nms([dup, a, other_label, far, later])
    assert kept == [a, other_label, far, later]
    # a border-cut box loses to a whole one even with a higher score
    assert spherical_nms([a, dup], demoted=[True, False]) == [dup]


def test_save_load_round_trip_and_bad_files(tmp_path):
    dets = [Detection(0.5, -0.2, 0.3, "cat", 0.8, 0.25), Detection(-3.0, 1.0, 0.1, "cup", 1.0, 0.5)]
    path = tmp_path / "d" / "clip.json"
    save_detections(path, dets, detector="blob", mode="tiles", frame_times_s=[0.25, 0.5])
    f = load_detections(path)
    assert f.detections == tuple(dets) and f.mode == "tiles" and f.detector == "blob"
    assert f.frame_times_s == (0.25, 0.5)
    assert [p.name for p in path.parent.iterdir()] == ["clip.json"]  # no temporary left
    assert set(json.loads(path.read_text())) >= {"detector", "mode", "detections"}
    (tmp_path / "bad.json").write_text('{"detections": [{"azimuth": 1}]}')
    with pytest.raises(MediaError, match="bad.json"):
        load_detections(tmp_path / "bad.json")
    with pytest.raises(MediaError, match="avsa detect"):
        load_detections(tmp_path / "missing.json")


def small_groundtruth():
    times = np.arange(16) / 16.0
    objs = [
        ObjectTrack(0, "cat", True, 0.4, np.linspace(0.0, 0.5, 16), np.zeros(16)),
        ObjectTrack(1, "cup", True, 0.3, np.full(16, 2.0), np.full(16, 0.3)),
        ObjectTrack(2, "rocket", False, 0.2, np.full(16, -1.5), np.zeros(16)),
    ]
    return GroundTruth(seed=0, scene="test", fps=16.0, duration_s=1.0, width=512, height=256,
                       sample_rate=24000, frame_times_s=times, objects=objs)


def test_oracle_reads_the_ground_truth():
    gt = small_groundtruth()
    dets = GroundTruthOracle().detect_times(gt, [0.0, 0.5])
    assert len(dets) == 6
    cat = [d for d in dets if d.label == "cat" and d.time_s == 0.5][0]
    assert cat.azimuth == pytest.approx(0.5 * 8 / 15) and cat.size == pytest.approx(0.4)
    sounding = GroundTruthOracle(sounding_only=True).detect_times(gt, [0.0])
    assert sorted(d.label for d in sounding) == ["cat", "cup"]
    r = recall_of_sounding_objects(dets, gt, [0.0, 0.5])
    assert r.recall == 1.0 and r.false_detections == 0


def test_recall_counts_sounding_objects_within_the_angle():
    gt = small_groundtruth()
    dets = [Detection(0.05, 0.0, 0.3, "x", 1.0, 0.0),    # near the cat
            Detection(-1.5, 0.0, 0.3, "x", 1.0, 0.0),    # the silent rocket: not a miss, not false
            Detection(1.0, -1.0, 0.3, "x", 1.0, 0.0)]    # nothing there
    r = recall_of_sounding_objects(dets, gt, [0.0, 0.5], max_angle=10 * RAD)
    assert (r.found, r.total, r.detections, r.false_detections) == (1, 4, 3, 1)
    assert r.recall == 0.25


def test_precomputed_csv_and_json_round_trip(tmp_path):
    rows = [("a", Detection(0.1, 0.2, 0.3, "cat", 0.9, 0.0)), ("a", Detection(-1.0, 0.0, 0.5, "cup", 0.5, 0.25)),
            ("b", Detection(3.0, -0.5, 0.2, "person", 1.0, 1.0))]
    write_precomputed_csv(tmp_path / "d.csv", rows)
    p = PrecomputedDetections(tmp_path / "d.csv")
    assert p.clip_ids == ["a", "b"] and p.for_clip("a") == [r[1] for r in rows[:2]]
    assert p.for_clip("zzz") == []
    doc = {"unit": "deg", "detections": [
        {"clip_id": "c", "time_s": 0.5, "azimuth": 90, "elevation": -30, "size": 20, "label": "cat"}]}
    (tmp_path / "d.json").write_text(json.dumps(doc))
    (d,) = PrecomputedDetections(tmp_path / "d.json").for_clip("c")
    assert d.azimuth == pytest.approx(math.pi / 2) and d.elevation == pytest.approx(-math.pi / 6)
    assert d.size == pytest.approx(20 * RAD) and d.score == 1.0


def test_precomputed_bad_rows_name_the_problem(tmp_path):
    (tmp_path / "deg.csv").write_text("clip_id,time_s,azimuth,elevation,size,label\na,0,90,45,10,cat\na,0,0,100,1,x\n")
    with pytest.raises(MediaError, match="row 1.*unit=deg"):
        PrecomputedDetections(tmp_path / "deg.csv")
    (tmp_path / "miss.csv").write_text("clip_id,time_s,azimuth\na,0,1\n")
    with pytest.raises(MediaError, match="missing elevation"):
        PrecomputedDetections(tmp_path / "miss.csv")
    with pytest.raises(MediaError, match="format"):
        PrecomputedDetections(tmp_path / "x.txt")


# -- avsa detect on a tiny hand-made cache -------------------------------------------------

def make_cache(root, n_good=2):
    """A cache with ``n_good`` 1-s clips (a red disc = the sounding object) and one broken clip."""
    from avsa.media.cache import MANIFEST_COLUMNS, ClipRecord, write_csv_atomic
    from avsa.media.io import write_av

    (root / "clips").mkdir(parents=True)
    rows = []
    tex = np.random.default_rng(0).integers(60, 120, (128, 256, 1)).astype(np.uint8).repeat(3, axis=2)
    for k in range(n_good + 1):
        cid = f"v{k}_c000"
        gt_rel = ""
        if k < n_good:
            times = np.arange(16) / 16.0
            az = np.linspace(-0.5, 0.5, 16) + 2.0 * k - 1.0
            el = np.full(16, 0.2)
            frames = []
            for a, e in zip(az, el):
                f = marker_frame([(a, e, 12 * RAD)], width=256)
                frames.append(np.where((f == (255, 0, 0)).all(-1, keepdims=True), f, tex))
            write_av(root / "clips" / f"{cid}.mp4", np.stack(frames), 16.0, gop=4)
            objs = [ObjectTrack(0, "cat", True, 24 * RAD, az, el),
                    ObjectTrack(1, "cup", False, 0.2, np.full(16, 3.0), np.zeros(16))]
            GroundTruth(seed=k, scene="test", fps=16.0, duration_s=1.0, width=256, height=128,
                        sample_rate=24000, frame_times_s=times, objects=objs).save(root / "clips" / f"{cid}.json")
            gt_rel = f"clips/{cid}.json"
        else:
            (root / "clips" / f"{cid}.mp4").write_bytes(b"not a video at all" * 10)
        rows.append(ClipRecord(clip_id=cid, source=f"v{k}.mp4", split="train", start_s=0.0, duration_s=1.0,
                               video=f"clips/{cid}.mp4", audio=f"clips/{cid}.flac", groundtruth=gt_rel,
                               loudness_db=-20.0, validity=1.0, convention="ambix", status="ok").to_row())
    write_csv_atomic(root / "manifest.csv", MANIFEST_COLUMNS, rows)
    return root


def test_detect_cli_oracle_blob_recall_resume_and_shards(tmp_path, capsys):
    from avsa.cli import main

    cache = make_cache(tmp_path / "cache")
    det_dir = cache / "detections"
    assert main(["detect", str(cache), "--detector", "oracle", "--every-n-frames", "4"]) == 0
    out = capsys.readouterr()
    assert "2 clips done" in out.out and "1 failed" in out.out and "v2_c000" in out.err
    f = load_detections(det_dir / "oracle" / "v0_c000.json")
    assert f.mode == "groundtruth" and f.frame_times_s == (0.0, 0.25, 0.5, 0.75)
    assert len(f.detections) == 8  # two objects × four frames

    assert main(["detect", str(cache), "--detector", "blob", "--every-n-frames", "8", "--report-recall"]) == 0
    out = capsys.readouterr().out
    assert "2 clips done" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:] if line.strip()}
    assert float(rows["oracle"][3]) == 1.0
    assert float(rows["blob-equirect"][3]) >= 0.5  # the red discs stand out of the texture

    written = {p.name: p.stat().st_mtime_ns for p in (det_dir / "blob-equirect").iterdir()}
    assert sorted(written) == ["v0_c000.json", "v1_c000.json"]
    (det_dir / "blob-equirect" / "v1_c000.json").unlink()
    assert main(["detect", str(cache), "--detector", "blob", "--every-n-frames", "8"]) == 0
    assert "1 clips done, 1 already done" in capsys.readouterr().out
    assert (det_dir / "blob-equirect" / "v0_c000.json").stat().st_mtime_ns == written["v0_c000.json"]
    assert (det_dir / "blob-equirect" / "v1_c000.json").exists()

    for i in range(2):
        main(["detect", str(cache), "--detector", "oracle", "--name", "sharded", "--shard", f"{i}/2"])
    capsys.readouterr()
    assert sorted(p.name for p in (det_dir / "sharded").iterdir()) == ["v0_c000.json", "v1_c000.json"]


def test_detect_cli_errors_are_clear(tmp_path, capsys):
    from avsa.cli import main

    cache = make_cache(tmp_path / "cache", n_good=1)
    assert main(["detect", str(cache), "--detector", "yolo"]) == 1
    assert "--weights" in capsys.readouterr().err
    assert main(["detect", str(cache), "--detector", "yolo", "--weights", str(tmp_path / "no.pt")]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["detect", str(cache), "--detector", "precomputed"]) == 1
    assert "--file" in capsys.readouterr().err
    assert main(["detect", str(tmp_path / "nowhere"), "--detector", "oracle"]) == 1
    assert main(["detect", str(cache), "--detector", "oracle", "--shard", "2/2"]) == 1


# -- backends with pretrained or user-supplied models ------------------------------------------

def test_haar_cascade_finds_the_astronauts_face():
    pytest.importorskip("cv2")
    from skimage import data

    from avsa.data.detection.haar import HaarCascadeDetector

    boxes = [b for b in HaarCascadeDetector().detect_image(data.astronaut()) if b.label == "person"]
    assert len(boxes) == 1
    b = boxes[0]
    assert 180 < (b.x0 + b.x1) / 2 < 270 and 70 < (b.y0 + b.y1) / 2 < 160  # her face
    assert HaarCascadeDetector().detect_image(np.full((200, 200, 3), 128, np.uint8)) == []


def test_ssd_output_rows_become_pixel_boxes():
    from avsa.data.detection.opencv_dnn import parse_ssd_output

    out = np.array([[[[0, 1, 0.9, 0.1, 0.2, 0.3, 0.4], [0, 2, 0.1, 0, 0, 1, 1], [0, 7, 0.5, -0.1, 0.5, 1.2, 1.0]]]])
    boxes = parse_ssd_output(out, width=200, height=100, labels=["bg", "person", "bicycle"], min_score=0.3)
    assert boxes == [Box2D(20.0, 20.0, 60.0, 40.0, "person", 0.9), Box2D(0.0, 50.0, 200.0, 100.0, "7", 0.5)]


def test_yolo_backend_never_downloads_and_says_what_is_missing(tmp_path):
    from avsa.data.detection.yolo import YoloDetector
    from avsa.errors import ConfigError

    with pytest.raises(ConfigError, match="nothing is downloaded"):
        YoloDetector(tmp_path / "yolov8n.pt")
    (tmp_path / "m.pt").write_bytes(b"x")
    try:
        import ultralytics  # noqa: F401
    except Exception:
        with pytest.raises(ConfigError, match="ultralytics"):
            YoloDetector(tmp_path / "m.pt")


def test_yolo_from_config_runs_on_a_frame():
    pytest.importorskip("ultralytics")
    from importlib.resources import files

    from avsa.data.detection.yolo import YoloDetector

    cfg = files("ultralytics") / "cfg" / "models" / "v8" / "yolov8.yaml"
    det = YoloDetector(str(cfg), min_score=0.0, image_size=64)
    dets = EquirectRunner(det).detect_frame(marker_frame([(0.0, 0.0, 0.2)], width=128), time_s=0.0)
    assert all(-math.pi < d.azimuth <= math.pi for d in dets)


def test_blob_threshold_k_lower_keeps_every_region_and_bad_k_is_an_error():
    """A lower ``k`` thresholds the same saliency map lower: every region found at k = 3 lies in one found at k = 2."""
    from avsa.data.detection.run import DetectOptions, build_image_detector
    from avsa.data.detection.blob import SaliencyBlobDetector
    from avsa.errors import InputError

    rng = np.random.default_rng(0)
    image = rng.integers(90, 140, (128, 256, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:128, :256]
    for cy, cx, colour in ((40, 60, (230, 20, 20)), (90, 190, (20, 20, 230))):
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < 64] = colour
    strict = SaliencyBlobDetector(k=3.0).detect_image(image)
    loose = build_image_detector(DetectOptions(detector="blob", blob_k=2.0)).detect_image(image)
    assert strict and len(loose) >= 1
    for box in strict:
        cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
        assert any(b.x0 <= cx <= b.x1 and b.y0 <= cy <= b.y1 for b in loose)
    with pytest.raises(InputError, match="finite"):
        SaliencyBlobDetector(k=float("nan"))
