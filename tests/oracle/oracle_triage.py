"""Triage the oracle (a developer's tool, not a test): run test_oracle_ops.py, group the failures by kind.

    python tests/oracle/oracle_triage.py [pytest -k expression]

Prints each failing case id with its first error line, grouped as ``missing`` (AttributeError, an unexpected or
missing argument: the op or a keyword is not implemented), ``disagrees`` (minivae's numbers, shapes or dtypes
differ from PyTorch's: a finding) and ``other`` (an exception inside minivae), plus ``unexpected passes`` of
strict xfails (the mark has to go). Also writes the lists as JSON to /tmp/oracle_triage.json.
"""
from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

HERE = pathlib.Path(__file__).resolve().parent
MISSING = re.compile(r"AttributeError|unexpected keyword|missing \d+ required|takes \d+ positional|"
                     r"got multiple values|not callable|invalid combination of arguments|has no attribute")


def run(k_expr: str | None = None) -> dict:
    xml = pathlib.Path("/tmp/oracle_triage.xml")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "test_oracle_ops.py"),
           f"--junitxml={xml}", "--tb=line", "-o", "junit_family=xunit1"]
    if k_expr:
        cmd += ["-k", k_expr]
    subprocess.run(cmd, cwd=HERE.parents[1], stdout=subprocess.DEVNULL)
    groups = {"missing": {}, "disagrees": {}, "other": {}, "unexpected passes": {}}
    for case in ET.parse(xml).getroot().iter("testcase"):
        name = case.get("name")
        cid = name[name.index("[") + 1:-1] if "[" in name else name
        fail = case.find("failure")
        if fail is None:
            continue
        msg = (fail.get("message") or "").strip().splitlines()
        first = next((m for m in msg if m.strip()), "")
        text = fail.text or ""
        if "XPASS(strict)" in first or "XPASS" in text[:200]:
            groups["unexpected passes"][cid] = first
        elif MISSING.search(first) or MISSING.search(text.splitlines()[-1] if text else ""):
            groups["missing"][cid] = first[:160]
        elif "AssertionError" in first or first.startswith(("forward", "vjp", "double", "jvp", "fwd", "rev")) \
                or "Not equal to tolerance" in text or "result " in first:
            detail = [m for m in msg if "result" in m or "Max" in m][:3]
            groups["disagrees"][cid] = " | ".join(detail)[:300] or first[:200]
        else:
            groups["other"][cid] = first[:200]
    return groups


if __name__ == "__main__":
    groups = run(sys.argv[1] if len(sys.argv) > 1 else None)
    for kind, cases in groups.items():
        print(f"== {kind}: {len(cases)}")
        for cid, msg in sorted(cases.items()):
            print(f"  {cid}: {msg}")
    pathlib.Path("/tmp/oracle_triage.json").write_text(json.dumps(groups, indent=1))
