"""The README stays true to the code: its Jupyter example runs, its two set-up commands exist."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_quick_start_has_exactly_the_two_setup_commands():
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", quick, flags=re.S)
    assert [b.strip() for b in blocks] == ["pip install -e . && neuroana demo", "bash .ci/run"]
    assert (REPO / ".ci" / "run").is_file()


def test_jupyter_example_runs_on_a_session(tmp_path):
    from neuroana.datasets import make_session
    from neuroana.io import write_session_nwb

    path = write_session_nwb(make_session(random_state=0, duration=20.0), tmp_path / "s.nwb")
    (code,) = re.findall(r"```python\n(.*?)```", README.split("## In Jupyter", 1)[1], flags=re.S)[
        :1
    ]
    assert 'path = "session.nwb"' in code
    ns: dict = {}
    exec(code.replace('path = "session.nwb"', f"path = {str(path)!r}"), ns)
    assert ns["counts"].dims == ("time", "unit") and ns["traces"].dims == ("time", "roi")
    assert ns["counts"].attrs["start"] == 0.0  # the wake epoch starts the synthetic session
