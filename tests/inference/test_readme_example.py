"""The README's Python example runs verbatim against a tiny trained model."""

import re
from pathlib import Path

import numpy as np
import soundfile as sf

from avsa.inference.model import save_pretrained

README = Path(__file__).resolve().parents[2] / "README.md"


def first_python_block(text: str) -> str | None:
    match = re.search(r"^```python[ \t]*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    return match.group(1) if match else None


def test_the_readme_python_example_runs(tiny_run, tmp_path, monkeypatch, capsys):
    code = first_python_block(README.read_text())
    assert code, "README.md has no ```python example"
    save_pretrained(tiny_run, tmp_path / "demo_out" / "model")
    foa = np.random.default_rng(0).standard_normal((2 * 48000, 4)) * 0.1
    sf.write(tmp_path / "clip.wav", foa, 48000, subtype="FLOAT")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    assert re.match(r"\(\d+, \d+\) \[0\.5 +0\.6 +0\.7\]", out), out
    assert sorted(p.name for p in (tmp_path / "my_model").iterdir()) == ["README.md", "config.json",
                                                                         "model.safetensors"]


def test_the_readme_is_a_front_door():
    """At most 150 lines: measurements live in docs/, and every docs page the README links to exists."""
    import re

    readme = Path(__file__).resolve().parents[2] / "README.md"
    text = readme.read_text()
    assert len(text.splitlines()) <= 150
    for target in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (readme.parent / target).is_file(), target
