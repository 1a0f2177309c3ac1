"""The cache under concurrency, interruption, stale options and colliding names."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile

from avsa.cli import main
from avsa.errors import InputError
from avsa.media.cache import Cache, check_clip_id, writer_lock
from avsa.media.prepare import PrepareOptions, prepare
from avsa.media.sources import find_sources

from .test_prepare import OPTIONS, make_source, read_manifest


def _sources(src: Path, n: int) -> Path:
    for k in range(n):
        make_source(src / f"s{k}.mp4", duration_s=1.0, seed=k)
    return src


def test_a_second_writer_stops_with_a_message_naming_the_holder(tmp_path):
    src, cache = _sources(tmp_path / "src", 1), tmp_path / "cache"
    with writer_lock(cache):
        with pytest.raises(InputError, match=rf"another avsa prepare is writing this cache \(pid {os.getpid()}"):
            prepare(src, cache, options=OPTIONS, progress=False)
        assert not (cache / "manifest.csv").exists()
    prepare(src, cache, options=OPTIONS, progress=False)  # the lock goes with its holder
    assert len(read_manifest(cache)) == 1


def test_shards_of_one_count_write_side_by_side_and_overlapping_writers_are_refused(tmp_path):
    cache = tmp_path / "cache"
    with writer_lock(cache, (0, 2)), writer_lock(cache, (1, 2)):  # e.g. two machines on a shared cache
        with pytest.raises(InputError, match=r"writing shard 0/2 of this cache \(pid \d+ .*shard 0/2"):
            with writer_lock(cache, (0, 2)):
                pass
        with pytest.raises(InputError, match="shards of another count"):
            with writer_lock(cache, (0, 3)):
                pass
        with pytest.raises(InputError, match="another avsa prepare is writing this cache"):
            with writer_lock(cache):
                pass
    with writer_lock(cache, (0, 3)):
        pass


def test_a_shard_removes_only_its_own_temporaries(tmp_path):
    from avsa.media.prepare import remove_temporaries
    from avsa.media.sources import in_shard

    clips = tmp_path / "cache" / "clips"
    clips.mkdir(parents=True)
    names = [f"src{k}" for k in range(8)]
    for name in names:
        (clips / f".{name}_c000.77-beef.partial.mp4").write_bytes(b"half")
        (clips / f"{name}_c000.mp4").write_bytes(b"a finished clip")
    assert remove_temporaries(tmp_path / "cache", (1, 2)) == sum(in_shard(n, (1, 2)) for n in names)
    left = {p.name for p in clips.iterdir()}
    for name in names:
        assert (f".{name}_c000.77-beef.partial.mp4" in left) == (not in_shard(name, (1, 2)))
        assert f"{name}_c000.mp4" in left


def test_the_lock_of_a_killed_writer_is_released(tmp_path):
    cache = tmp_path / "cache"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from avsa.media.cache import writer_lock\n"
         "with writer_lock(sys.argv[1]):\n    print('held', flush=True); sys.stdin.read()", str(cache)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert holder.stdout.readline().strip() == b"held"
        with pytest.raises(InputError, match="another avsa prepare"):
            with writer_lock(cache):
                pass
    finally:
        holder.kill()
        holder.wait()
    with writer_lock(cache):
        pass


def test_rerun_verifies_repairs_undecodable_clips_and_removes_temporaries(tmp_path, capsys):
    src, cache = _sources(tmp_path / "src", 2), tmp_path / "cache"
    prepare(src, cache, options=OPTIONS, progress=False)
    first = (cache / "manifest.csv").read_bytes()
    video, audio = cache / "clips" / "s0_c000.mp4", cache / "clips" / "s1_c000.flac"
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 3])  # a writer killed mid-file
    audio.write_bytes(b"fLaC" + b"\0" * 64)
    stale = [cache / "clips" / ".s1_c000.123-abcd.partial.mp4", cache / "clips" / "s1_c000.partial.flac"]
    for path in stale:
        path.write_bytes(b"half")
    assert main(["prepare", str(src), "--out", str(cache), "--width", str(OPTIONS.width)]) == 0
    out = capsys.readouterr().out
    assert "repaired 2 missing or undecodable file(s)" in out and "0 already done" in out
    assert (cache / "manifest.csv").read_bytes() == first
    assert not any(path.exists() for path in stale)
    import av

    with av.open(str(video)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 16
    assert soundfile.info(str(audio)).frames == 24000
    results, _, _ = prepare(src, cache, options=OPTIONS, progress=False)
    assert all(r.skipped and not r.repaired for r in results)


def test_a_rerun_with_other_options_stops_naming_them(tmp_path):
    src, cache = _sources(tmp_path / "src", 1), tmp_path / "cache"
    prepare(src, cache, options=OPTIONS, progress=False)
    for other, named in ((PrepareOptions(width=64, clip_s=10.0), "--width 128 (this run: 64)"),
                         (PrepareOptions(width=OPTIONS.width, sample_rate=16000),
                          "--sample-rate 24000 (this run: 16000)")):
        with pytest.raises(InputError, match="prepared with other options") as error:
            prepare(src, cache, options=other, progress=False)
        assert named in str(error.value)
    assert "width" in (cache / "prepare.json").read_text()


def test_a_cache_without_an_options_record_is_not_extended(tmp_path):
    src, cache = _sources(tmp_path / "src", 1), tmp_path / "cache"
    prepare(src, cache, options=OPTIONS, progress=False)
    (cache / "prepare.json").unlink()
    with pytest.raises(InputError, match="no .*prepare.json"):
        prepare(src, cache, options=OPTIONS, progress=False)


@pytest.mark.parametrize("argv, named", [
    (["--fps", "0"], "--fps 0.0: must be a positive number"),
    (["--clip-seconds", "0"], "--clip-seconds 0.0: must be a positive number"),
    (["--sample-rate", "-1"], "--sample-rate -1: must be a positive number"),
])
def test_impossible_prepare_options_are_named(tmp_path, capsys, argv, named):
    src = _sources(tmp_path / "src", 1)
    assert main(["prepare", str(src), "--out", str(tmp_path / "cache"), *argv]) == 1
    assert named in capsys.readouterr().err


def test_out_an_existing_file_is_named(tmp_path, capsys):
    src = _sources(tmp_path / "src", 1)
    (tmp_path / "file").write_text("x")
    assert main(["prepare", str(src), "--out", str(tmp_path / "file")]) == 1
    assert f"--out {tmp_path / 'file'}: exists and is not a folder" in capsys.readouterr().err


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads process states from /proc")
def test_pool_workers_exit_when_their_parent_is_killed(tmp_path):
    script = (
        "import os, sys, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from avsa.media.workers import exit_with_parent, spawn_context\n"
        "if __name__ == '__main__':\n"
        "    pool = ProcessPoolExecutor(1, mp_context=spawn_context(), initializer=exit_with_parent,\n"
        "                               initargs=(os.getpid(),))\n"
        "    print(pool.submit(os.getpid).result(), flush=True)\n"
        "    pool.submit(time.sleep, 3600)\n"
        "    time.sleep(3600)\n"
    )
    (tmp_path / "parent.py").write_text(script)
    parent = subprocess.Popen([sys.executable, str(tmp_path / "parent.py")], stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    worker = int(parent.stdout.readline())
    assert _alive(worker)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 60
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(worker):
        os.kill(worker, signal.SIGKILL)
        pytest.fail(f"worker {worker} outlived its killed parent")


def test_prepare_pool_workers_watch_their_parent(tmp_path, monkeypatch):
    from avsa.media import prepare as prepare_module
    from avsa.media.workers import exit_with_parent

    seen = {}
    real = prepare_module.ProcessPoolExecutor

    def recording(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(prepare_module, "ProcessPoolExecutor", recording)
    src = _sources(tmp_path / "src", 2)
    prepare(src, tmp_path / "cache", options=OPTIONS, jobs=2, progress=False)
    assert seen["initializer"] is exit_with_parent and seen["initargs"] == (os.getpid(),)
    assert len(read_manifest(tmp_path / "cache")) == 2


@pytest.mark.parametrize("names", [("sub/dup.mp4", "sub__dup.mp4"), ("twin.mp4", "twin.mkv")])
def test_colliding_source_names_are_an_error_naming_both_files(tmp_path, names):
    src = tmp_path / "src"
    for name in names:
        make_source(src / name, duration_s=1.0)
    with pytest.raises(InputError) as error:
        find_sources(src)
    assert all(name in str(error.value) for name in names)
    with pytest.raises(InputError):
        prepare(src, tmp_path / "cache", options=OPTIONS, progress=False)
    assert not (tmp_path / "cache" / "clips").exists()


@pytest.mark.parametrize("bad", ["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "x\0y", "x\ny"])
def test_unsafe_clip_ids_are_refused(bad):
    with pytest.raises(InputError, match="cannot be a file name"):
        check_clip_id(bad, where="here")
    assert check_clip_id("take#2_c000", where="here") == "take#2_c000"


def test_a_manifest_with_a_traversing_clip_id_is_refused(tmp_path):
    src, cache = _sources(tmp_path / "src", 1), tmp_path / "cache"
    prepare(src, cache, options=OPTIONS, progress=False)
    manifest = cache / "manifest.csv"
    manifest.write_text(manifest.read_text().replace("s0_c000,", "../../escaped,", 1))
    with pytest.raises(InputError, match=r"manifest.csv row 2: clip id '../../escaped'"):
        Cache(cache)


def test_detect_refuses_a_manifest_whose_clip_id_leaves_the_cache(tmp_path, capsys):
    src, cache = _sources(tmp_path / "src", 1), tmp_path / "shared" / "cache"
    prepare(src, cache, options=OPTIONS, progress=False)
    manifest = cache / "manifest.csv"
    manifest.write_text(manifest.read_text().replace("s0_c000,", "../../../planted,", 1))
    assert main(["detect", str(cache), "--detector", "oracle"]) == 1
    assert "clip id '../../../planted' cannot be a file name" in capsys.readouterr().err
    assert not list(tmp_path.rglob("planted*"))


def test_two_prepare_runs_at_once_leave_a_whole_cache(tmp_path):
    """Whichever order they run in: one stops at the lock or finds the work done; no clip is broken."""
    src, cache = _sources(tmp_path / "src", 4), tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = [sys.executable, "-m", "avsa.cli", "prepare", str(src), "--out", str(cache), "--width", str(OPTIONS.width)]
    runs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    codes = [run.returncode for run in runs]
    assert 0 in codes, outputs
    for code, (out, err) in zip(codes, outputs):
        assert code == 0 or b"another avsa prepare is writing this cache" in err, (code, err[-2000:])
    assert read_manifest(cache) and all(row["status"] == "ok" for row in read_manifest(cache))
    assert (cache / "failures.csv").read_text().strip() == "file,problem"
    import av

    for row in read_manifest(cache):
        with av.open(str(cache / row["video"])) as container:
            assert sum(1 for _ in container.decode(video=0)) == 16
        assert soundfile.info(str(cache / row["audio"])).frames == 24000
    results, _, _ = prepare(src, cache, options=OPTIONS, progress=False)
    assert all(r.skipped for r in results)


def test_youtube360_audio_files_of_one_video_are_an_error_naming_both(tmp_path):
    root = tmp_path / "yt"
    (root / "video").mkdir(parents=True)
    (root / "audio").mkdir()
    (root / "video" / "abcdefghijk-10.mp4").write_bytes(b"v")
    for suffix in (".m4a", ".opus"):
        (root / "audio" / f"abcdefghijk-10{suffix}").write_bytes(b"a")
    with pytest.raises(InputError, match=r"audio/abcdefghijk-10.m4a and audio/abcdefghijk-10.opus"):
        find_sources(root)
