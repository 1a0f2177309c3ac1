"""Every downstream loader on its generated stand-in, and on broken layouts."""

import shutil
import warnings

import numpy as np
import pytest

from avsa.errors import AvsaError, InputError, MediaError
from avsa.evaluate.datasets import (
    EigenScapeFolds, eigenscape_folds, eigenscape_folds_path, index_eigenscape, load_eigenscape, load_hmdb51, load_tau,
    load_ucf101,
)
from avsa.evaluate.datasets.common import clip_starts, read_item_audio, read_item_frames, read_table

import standins


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("standins")
    return {
        "eigenscape": standins.make_eigenscape(root / "eigenscape", classes=3, seconds=2.0, sample_rate=2000),
        "tau": standins.make_tau(root / "tau", classes=3, seconds=0.5, fps=8),
        "ucf": standins.make_ucf101(root / "ucf", groups=4, clips_per_group=2, frames=8),
        "hmdb": standins.make_hmdb51(root / "hmdb", videos_per_class=5, frames=8),
        "root": root,
    }


# --------------------------------------------------------------------------- EigenScape


def test_eigenscape_items_and_segments(data):
    items, classes = index_eigenscape(data["eigenscape"], segment_s=0.5)
    assert classes == ("Beach", "BusyStreet", "Park")
    assert len(items) == 3 * 8 * 4  # classes × recordings × (2 s / 0.5 s)
    first = [i for i in items if i.group == "Park.5"]
    assert [i.start_s for i in first] == [0.0, 0.5, 1.0, 1.5]
    assert all(i.label == 2 and i.label_name == "Park" and i.duration_s == 0.5 for i in first)
    assert first[0].id == "Park.5.01" and first[0].audio.endswith("Park.5.wav")


def test_eigenscape_folds_disjoint_sites_and_recorded(data, tmp_path):
    folds_path = tmp_path / "folds.json"
    seen_test = []
    for fold in range(1, 5):
        task, folds = load_eigenscape(data["eigenscape"], fold=fold, seed=3, folds_path=folds_path, segment_s=1.0)
        train_groups = {i.group for i in task.train}
        test_groups = {i.group for i in task.test}
        assert not train_groups & test_groups
        recs = {int(g.split(".")[1]) for g in test_groups}
        assert recs == set(folds.test_recordings(fold)) and len(recs) == 2
        # the same two recording numbers for every class
        assert {g.split(".")[0] for g in test_groups} == set(task.classes)
        assert len(task.test) == 3 * 2 * 2 and len(task.train) == 3 * 6 * 2
        seen_test += sorted(recs)
    assert sorted(seen_test) == list(range(1, 9))
    assert EigenScapeFolds.load(folds_path) == folds == eigenscape_folds(tuple(range(1, 9)), seed=3)
    # A saved file wins over the seed.
    task_again, folds_again = load_eigenscape(data["eigenscape"], fold=1, seed=99, folds_path=folds_path, segment_s=1.0)
    assert folds_again == folds
    assert eigenscape_folds(tuple(range(1, 9)), seed=4) != folds


def test_eigenscape_lite_and_cut_segments(tmp_path):
    lite = standins.make_eigenscape(tmp_path / "lite", classes=2, recordings=4, seconds=1.0, sample_rate=2000, lite=True)
    items, _ = index_eigenscape(lite, segment_s=0.5)
    assert len(items) == 2 * 4 * 2 and items[0].audio.endswith(".flac")
    cut = standins.make_eigenscape(tmp_path / "cut", classes=2, recordings=4, seconds=1.0, sample_rate=2000, cut_s=0.25)
    items, _ = index_eigenscape(cut)
    assert len(items) == 2 * 4 * 4
    assert items[1].id == "Beach.1.02" and items[1].start_s == 0 and items[1].duration_s is None


def test_eigenscape_decoding_takes_foa(data):
    items, _ = index_eigenscape(data["eigenscape"], segment_s=0.5)
    audio = read_item_audio(items[5], channels=4)
    assert audio.shape == (4, 1000)
    # stand-in: Y = W sin θ, X = W cos θ with θ = 0 for Beach (label 0)
    np.testing.assert_allclose(audio[3], audio[0], atol=1e-3)
    assert np.abs(audio[1]).max() < 1e-3


def test_eigenscape_errors(tmp_path):
    with pytest.raises(MediaError, match="no EigenScape file"):
        index_eigenscape(tmp_path)
    standins.make_eigenscape(tmp_path / "x", classes=1, recordings=2, seconds=1.0, sample_rate=2000, channels=4)
    import soundfile
    soundfile.write(tmp_path / "x" / "Beach.3.wav", np.zeros((2000, 2)), 2000)
    with pytest.raises(MediaError, match=r"Beach\.3\.wav: 2 channel"):
        index_eigenscape(tmp_path / "x", segment_s=0.5)
    (tmp_path / "x" / "Beach.3.wav").unlink()
    with pytest.raises(MediaError, match="shorter"):
        index_eigenscape(tmp_path / "x", segment_s=5.0)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(MediaError, match="bad.json"):
        EigenScapeFolds.load(tmp_path / "bad.json")
    with pytest.raises(InputError):
        eigenscape_folds((1, 2, 3), n_folds=4)


# --------------------------------------------------------------------------- TAU


@pytest.mark.parametrize("modality", ["audio", "video", "both"])
def test_tau_fold1(data, modality):
    task = load_tau(data["tau"], modality=modality)
    assert task.classes == ("airport", "bus", "metro")
    assert len(task.train) == 3 * 2 * 2 and len(task.test) == 3 * 1 * 2
    assert not {i.group for i in task.train} & {i.group for i in task.test}
    item = task.test[0]
    assert item.group == "prague-1002" and item.id == "airport-prague-1002-40000"
    assert (item.audio is not None) == (modality != "video")
    assert (item.video is not None) == (modality != "audio")
    assert [i.label_name for i in task.test] == [task.classes[i.label] for i in task.test]


def test_tau_meta_at_root_without_crlf(tmp_path):
    root = standins.make_tau(tmp_path / "t", classes=2, seconds=0.25, meta_folder=False, crlf=False)
    assert (root / "evaluation_setup" / "fold1_train.csv").exists()
    task = load_tau(root, modality="audio")
    assert len(task.train) == 8 and len(task.test) == 4


def test_tau_crlf_written_and_read(data):
    meta = next(data["tau"].glob("*.meta"))
    assert b"\r\n" in (meta / "evaluation_setup" / "fold1_train.csv").read_bytes()
    rows = read_table(meta / "meta.csv", required=("identifier",))
    assert all(not v.endswith("\r") for r in rows for v in r.values())


def test_tau_decoding(data):
    task = load_tau(data["tau"], modality="both")
    audio = read_item_audio(task.train[0])
    frames = read_item_frames(task.train[0], size=(32, 24))
    assert audio.shape == (2, 4000) and frames.shape == (4, 24, 32, 3)


def test_tau_errors(tmp_path):
    root = standins.make_tau(tmp_path / "t", classes=2, seconds=0.25, meta_folder=False, crlf=True)
    with pytest.raises(InputError):
        load_tau(root, modality="smell")
    victim = sorted((root / "video").iterdir())[0]
    victim.unlink()
    load_tau(root, modality="audio")  # the audio-only probe does not need the videos
    with pytest.raises(MediaError, match=victim.name):
        load_tau(root, modality="both")
    setup = root / "evaluation_setup" / "fold1_evaluate.csv"
    setup.write_text("filename_audio\tfilename_video\tscene_label\r\naudio/x.wav\tvideo/x.mp4\r\n")
    with pytest.raises(MediaError, match="line 2"):
        load_tau(root, modality="audio")
    setup.write_text("filename_audio,filename_video,scene_label\n")
    with pytest.raises(MediaError, match="lacks column"):
        load_tau(root, modality="audio")
    shutil.rmtree(root / "evaluation_setup")
    with pytest.raises(MediaError, match="evaluation_setup"):
        load_tau(root)


# --------------------------------------------------------------------------- UCF101


def test_ucf101_splits(data):
    all_ids = None
    for split in (1, 2, 3):
        task = load_ucf101(data["ucf"], split=split)
        assert task.classes == standins.UCF_CLASSES
        assert len(task.test) == 3 * 1 * 2 and len(task.train) == 3 * 3 * 2
        test_groups = {i.group.rsplit("_g", 1)[1] for i in task.test}
        assert test_groups == {f"{split:02d}"}
        assert not {i.group for i in task.train} & {i.group for i in task.test}
        ids = {i.id for i in task.train} | {i.id for i in task.test}
        assert all_ids is None or ids == all_ids
        all_ids = ids
    handstand = [i for i in task.train if i.label_name == "HandstandPushups"]
    assert handstand and all("v_HandStandPushups_" in i.video and i.label == 2 for i in handstand)
    assert handstand[0].group.startswith("HandstandPushups_g")


def test_ucf101_testlist_with_index_and_case(tmp_path):
    root = standins.make_ucf101(tmp_path / "u", classes=("Archery", "HandstandPushups"), groups=3,
                                clips_per_group=1, frames=4, testlist_with_index=True)
    assert (root / "ucfTrainTestlist" / "testlist01.txt").read_text().split("\n")[0].strip().endswith(" 1")
    # lists written in another letter case still resolve
    path = root / "ucfTrainTestlist" / "trainlist01.txt"
    path.write_text(path.read_text().replace("HandstandPushups/", "handstandpushups/"))
    task = load_ucf101(root, split=1)
    assert len(task.train) == 4 and len(task.test) == 2
    assert {i.label for i in task.test} == {0, 1}
    # root may be the UCF-101 folder itself with the lists beside it
    assert load_ucf101(root / "UCF-101", split=1).train == task.train


def test_ucf101_decoding(data):
    task = load_ucf101(data["ucf"], split=1)
    frames = read_item_frames(task.test[0])
    assert frames.shape == (8, 48, 64, 3) and frames.dtype == np.uint8


def test_ucf101_errors(tmp_path):
    root = standins.make_ucf101(tmp_path / "u", classes=("Archery", "Bowling"), groups=3, clips_per_group=1, frames=4)
    lists = root / "ucfTrainTestlist"
    with pytest.raises(InputError):
        load_ucf101(root, split=4)
    train = lists / "trainlist01.txt"
    good = train.read_bytes().decode()
    train.write_text(good.replace(" 2\r\n", " 1\r\n"))
    with pytest.raises(MediaError, match="classInd.txt gives Bowling = 2"):
        load_ucf101(root, split=1)
    train.write_text(good + "Bowling/v_Bowling_g09_c01.avi 2\r\n")
    with pytest.raises(MediaError, match="v_Bowling_g09_c01.avi: video not found"):
        load_ucf101(root, split=1)
    train.write_text(good + "Curling/v_Curling_g01_c01.avi 3\r\n")
    with pytest.raises(MediaError, match="Curling"):
        load_ucf101(root, split=1)
    train.write_text(good)
    (lists / "classInd.txt").write_text("1 Archery\r\nBowling\r\n")
    with pytest.raises(MediaError, match="line 2"):
        load_ucf101(root, split=1)
    shutil.rmtree(lists)
    with pytest.raises(MediaError, match="ucfTrainTestlist"):
        load_ucf101(root, split=1)


# --------------------------------------------------------------------------- HMDB51


def test_hmdb51_splits(data):
    for split in (1, 2, 3):
        task = load_hmdb51(data["hmdb"], split=split)
        assert task.classes == tuple(sorted(standins.HMDB_CLASSES))
        # per class: 5 videos → 1 unused, 1 test (30 % of 4), 3 train
        assert len(task.train) == 3 * 3 and len(task.test) == 3 * 1
        assert not {i.id for i in task.train} & {i.id for i in task.test}
        assert all(i.group == i.id for i in task.test)
    lines = (data["hmdb"] / "testTrainMulti_7030_splits" / "wave_test_split1.txt").read_text().splitlines()
    assert lines[0].endswith(" ")  # trailing space, as in the release


def test_hmdb51_errors(tmp_path):
    root = standins.make_hmdb51(tmp_path / "h", classes=("run", "walk"), videos_per_class=4, frames=4)
    split = root / "testTrainMulti_7030_splits" / "run_test_split1.txt"
    good = split.read_text()
    split.write_text(good + "extra.avi 7 \n")
    with pytest.raises(MediaError, match="run_test_split1.txt: line 5"):
        load_hmdb51(root, split=1)
    split.write_text(good + "missing.avi 1 \n")
    with pytest.raises(MediaError, match="missing.avi: video not found"):
        load_hmdb51(root, split=1)
    split.write_text(good)
    # the split folder may sit beside the video folder, or be given
    moved = tmp_path / "elsewhere"
    shutil.move(str(root / "testTrainMulti_7030_splits"), moved)
    with pytest.raises(MediaError, match="split folder not found"):
        load_hmdb51(root, split=1)
    assert len(load_hmdb51(root, split=1, splits_dir=moved).train) == 2 * 2


def test_errors_are_project_errors(tmp_path):
    for call in (lambda: load_hmdb51(tmp_path), lambda: load_ucf101(tmp_path), lambda: load_tau(tmp_path / "no"),
                 lambda: load_eigenscape(tmp_path / "no", fold=1)):
        with pytest.raises(AvsaError):
            call()


def test_clip_starts():
    np.testing.assert_array_equal(clip_starts(10, 4, 3), [0, 3, 6])
    np.testing.assert_array_equal(clip_starts(10, 4, 1), [3])
    with pytest.raises(InputError):
        clip_starts(3, 4, 1)


def test_unknown_eigenscape_class_warns(tmp_path):
    standins.make_eigenscape(tmp_path, classes=1, recordings=1, seconds=0.5, sample_rate=1000, channels=4)
    (tmp_path / "Beach.1.wav").rename(tmp_path / "Desert.1.wav")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items, classes = index_eigenscape(tmp_path, segment_s=0.5)
    assert classes == ("Desert",) and any("Desert" in str(w.message) for w in caught)


def test_eigenscape_folds_live_outside_the_dataset_and_an_unwritable_place_only_warns(data, tmp_path, monkeypatch):
    monkeypatch.setenv("AVSA_DERIVED_DIR", str(tmp_path / "derived"))
    path = eigenscape_folds_path(data["eigenscape"])
    assert data["eigenscape"] not in path.parents and (tmp_path / "derived") in path.parents
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with pytest.warns(UserWarning, match="cannot record the EigenScape folds"):
        task, folds = load_eigenscape(data["eigenscape"], fold=1, seed=3, folds_path=blocked / "folds.json",
                                      segment_s=1.0)
    assert folds == eigenscape_folds(tuple(range(1, 9)), seed=3) and task.test
