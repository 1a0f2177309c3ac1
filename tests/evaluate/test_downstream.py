"""avsa evaluate: every downstream task end to end on a tiny checkpoint (synthetic tasks and real stand-ins)."""

import json

import numpy as np
import pytest
import torch

from avsa.cli import main
from avsa.errors import InputError
from avsa.evaluate import datasets
from avsa.evaluate.downstream import ProbeSettings, audio_clips, evaluate_downstream, result_name
from avsa.inference.pretrained import load_pretrained
from avsa.evaluate.results import load_results

import standins

FAST = ProbeSettings(epochs=10)


@pytest.fixture(scope="module")
def stereo_run(synthetic_cache, tmp_path_factory, tiny_trainer):
    """A tiny stereo + ICF model (unnormalised), trained one step per stage."""
    return tiny_trainer(synthetic_cache, tmp_path_factory.mktemp("stereo-run"), "tiny/stereo-icf", steps=1,
                      extra=["data.normalize=false"])


def _check(result, *, n_items, n_classes):
    assert result.n == n_items
    assert result.chance == pytest.approx(1 / n_classes)
    assert 0.0 <= result.low <= result.value <= result.high <= 1.0
    assert len(result.details["confusion"]) == n_classes
    assert sum(map(sum, result.details["confusion"])) == n_items
    if "item_correct" in result.details:  # per-item outcomes for paired comparisons
        assert np.mean(result.details["item_correct"]) == pytest.approx(result.value)
        assert len(result.details["item_ids"]) == len(result.details["groups"]) == n_items


def test_cli_writes_synthetic_results_into_the_run(tiny_run, capsys):
    assert main(["evaluate", str(tiny_run), "--task", "synth-foa-scenes", "--task", "synth-video-motion",
                 "--small", "--epochs", "10"]) == 0
    results = load_results(tiny_run)
    _check(results["synth-foa-scenes"], n_items=5 * 2, n_classes=5)  # 5 scene types, 2 test scenes each
    _check(results["synth-video-motion"], n_items=6 * 2, n_classes=6)
    clip = results["synth-foa-scenes"].details["clip_accuracy"]
    assert clip["n"] == 10 * 3  # three 1-s windows per 3-s scene
    out = capsys.readouterr().out
    assert "synth-foa-scenes" in out and "synth-video-motion" in out


def test_foa_model_refuses_binaural_tasks_before_any_work(tiny_run, capsys):
    p = load_pretrained(tiny_run)
    for task in ("synth-binaural-scenes", "tau-audio", "tau-fusion"):
        with pytest.raises(InputError, match="FOA"):
            evaluate_downstream(p, task, root="nowhere")
    assert main(["evaluate", str(tiny_run), "--task", "synth-video-motion", "--task", "tau-audio",
                 "--root", "nowhere"]) == 1
    assert "tau-audio" in capsys.readouterr().err
    with pytest.raises(InputError, match="needs --root"):
        evaluate_downstream(p, "ucf101")


def test_audio_clips_windows_and_layouts(tiny_run, stereo_run):
    foa_model, stereo_model = load_pretrained(tiny_run), load_pretrained(stereo_run)
    sr = foa_model.sample_rate
    foa = torch.randn(4, 5 * sr)
    x = audio_clips(foa_model, foa, layout="foa", n_clips=3)
    assert x.shape[:2] == (3, 7)  # FOA-IV: 4 log-mel + 3 intensity channels
    assert x.shape[0] == 3 and torch.isfinite(x).all()
    # windows are evenly spaced and start at the first sample: window 0 equals the first second alone
    first = audio_clips(foa_model, foa[:, :sr], layout="foa", n_clips=1)
    torch.testing.assert_close(x[0], first[0])
    # consecutive windows when n_clips is None; a short signal is padded to one window
    assert audio_clips(foa_model, foa, layout="foa", n_clips=None).shape[0] == 5
    assert audio_clips(foa_model, foa[:, : sr // 2], layout="foa", n_clips=None).shape[0] == 1
    # a stereo model takes binaural L/R as its two channels (ICF: 2 log-mel + 3 inter-channel)
    assert audio_clips(stereo_model, torch.randn(2, 2 * sr), layout="binaural", n_clips=2).shape[:2] == (2, 5)
    with pytest.raises(InputError):
        audio_clips(foa_model, torch.randn(2, sr), layout="binaural", n_clips=1)


def test_stereo_model_on_binaural_scenes(stereo_run):
    p = load_pretrained(stereo_run)
    r = evaluate_downstream(p, "synth-binaural-scenes", small=True, settings=FAST, progress=False)
    _check(r, n_items=10, n_classes=5)
    assert r.task == "synth-binaural-scenes"


def test_real_standins_every_task(tiny_run, stereo_run, tmp_path, monkeypatch):
    monkeypatch.setenv("AVSA_DERIVED_DIR", str(tmp_path / "derived"))
    foa_model, stereo_model = load_pretrained(tiny_run), load_pretrained(stereo_run)
    eig = standins.make_eigenscape(tmp_path / "eig", classes=3, recordings=8, seconds=2.0, sample_rate=2000, channels=4)
    dataset_files = sorted(eig.rglob("*"))
    r = evaluate_downstream(foa_model, "eigenscape", root=eig, n_clips=2, settings=FAST, progress=False,
                            segment_s=1.0)
    _check(r, n_items=3 * 8 * 2, n_classes=3)  # 4 folds pooled: every 1-s segment of every recording tested once
    assert [f["fold"] for f in r.details["per_fold"]] == [1, 2, 3, 4]
    assert sorted(eig.rglob("*")) == dataset_files  # nothing is written into a dataset's folder
    folds_file = datasets.eigenscape_folds_path(eig)
    assert folds_file.is_file() and (tmp_path / "derived") in folds_file.parents  # fixed for later runs
    one = evaluate_downstream(foa_model, "eigenscape", root=eig, split=2, n_clips=2, settings=FAST, progress=False,
                               segment_s=1.0)
    assert one.task == "eigenscape-fold2" and one.n == 3 * 2 * 2

    tau = standins.make_tau(tmp_path / "tau", classes=3, segments=2, seconds=1.0, sample_rate=4000, fps=8,
                            size=(32, 24))
    for task in ("tau-audio", "tau-video", "tau-fusion"):
        r = evaluate_downstream(stereo_model, task, root=tau, n_clips=2, settings=FAST, progress=False)
        _check(r, n_items=6, n_classes=3)
    tv = evaluate_downstream(foa_model, "tau-video", root=tau, n_clips=2, settings=FAST, progress=False)
    assert tv.details["video_accuracy"]["n"] == 6

    ucf = standins.make_ucf101(tmp_path / "ucf", groups=3, clips_per_group=2, frames=16, size=(32, 24))
    r = evaluate_downstream(foa_model, "ucf101", root=ucf, n_clips=2, settings=FAST, progress=False)
    assert r.task == "ucf101" and r.details["clip_accuracy"]["n"] == 2 * r.n
    hmdb = standins.make_hmdb51(tmp_path / "hmdb", videos_per_class=6, frames=16, size=(32, 24))
    r = evaluate_downstream(foa_model, "hmdb51", root=hmdb, split=3, n_clips=2,
                            settings=ProbeSettings(mode="finetune", epochs=2), progress=False)
    assert r.task == "hmdb51-finetune-split3" and r.details["mode"] == "finetune"


def test_unreadable_video_is_skipped_and_reported(tiny_run, tmp_path):
    ucf = standins.make_ucf101(tmp_path, groups=3, clips_per_group=2, frames=16, size=(32, 24))
    videos = sorted(ucf.rglob("*.avi"))
    videos[0].write_bytes(b"\x00" * 100)  # corrupt one file
    r = evaluate_downstream(load_pretrained(tiny_run), "ucf101", root=ucf, n_clips=2, settings=FAST, progress=False)
    assert len(r.details["skipped"]) == 1 and videos[0].stem in r.details["skipped"][0]["item"] + \
        r.details["skipped"][0]["problem"]
    saved = json.loads(json.dumps(r.details))  # JSON-serialisable for eval/*.json
    assert saved["skipped"][0]["problem"]


def test_result_names():
    assert result_name("ucf101", "linear", 1) == "ucf101"
    assert result_name("ucf101", "finetune", 2) == "ucf101-finetune-split2"
    assert result_name("eigenscape", "linear", None) == "eigenscape"
    assert result_name("eigenscape", "linear", 3) == "eigenscape-fold3"
