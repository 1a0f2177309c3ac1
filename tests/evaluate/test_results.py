import pytest

from avsa.errors import InputError
from avsa.evaluate.results import Result, load_results, save_result


def test_results_round_trip(tmp_path):
    r = Result(task="avc-binary", value=0.8, low=0.7, high=0.9, n=100, n_groups=25, chance=0.5,
               details={"per_kind": {"object": 0.9}})
    save_result(tmp_path, r)
    assert load_results(tmp_path) == {"avc-binary": r}
    assert r.cell() == "80.0 [70.0, 90.0]"


def test_value_outside_interval_is_rejected():
    with pytest.raises(InputError, match="outside its interval"):
        Result(task="x", value=0.95, low=0.7, high=0.9, n=10)


def test_corrupt_result_file_names_it(tmp_path):
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "bad.json").write_text("{")
    with pytest.raises(InputError, match="bad.json"):
        load_results(tmp_path)


def test_the_printed_table_splits_what_the_sound_decides_by_crop_kind(tmp_path, capsys):
    from avsa.evaluate.tasks import print_results

    sound = Result(task="avsa-sound-dependent", value=0.3, low=0.2, high=0.4, n=400, n_groups=26,
                   metric="accuracy difference", chance=0.0, checkpoint="c",
                   details={"per_kind": {"object": {"value": 0.45, "avsa": 0.7, "control": 0.25, "n": 250},
                                         "random": {"value": 0.05, "avsa": 0.6, "control": 0.55, "n": 150}}})
    print_results([sound], tmp_path)
    out = capsys.readouterr().out
    assert "30.0 [20.0, 40.0] pts" in out
    assert "object crops" in out and "45.0 pts = 70.0 - 25.0 (control)  n 250" in out
    assert "random crops" in out and "5.0 pts = 60.0 - 55.0 (control)  n 150" in out
