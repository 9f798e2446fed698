"""The README's Python snippet runs as written (it is what a new user types first)."""
from __future__ import annotations

import pathlib
import re
import warnings

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_api_snippet_runs_without_warnings():
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    assert "create_graph=True" in code and "forward_ad" in code
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec(compile(code, str(README), "exec"), {})
