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
