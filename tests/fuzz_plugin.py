"""The fuzz test's session tally (tests/test_fuzz.py), as a pytest plugin.

Every generated input the fuzz tests try, and every one that failed, is counted in the
session-wide ``fuzz_tally`` fixture; at the end of the session the tally is printed in
pytest's summary and written as JSON to $DENDRAX_FUZZ_REPORT, or to fuzz_report.json in
pytest's base temporary folder.
"""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest

FUZZ_TALLY = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def fuzz_tally(pytestconfig, tmp_path_factory) -> dict:
    """{"tried": Counter by target, "failed": Counter by target, "results": Counter by
    (target, result)}, shared by the session; a result is "error" (a DendraxError),
    "trained" (the stub trainer was reached) or "ok" (read back without error)."""
    return pytestconfig.stash.setdefault(FUZZ_TALLY, {
        "tried": Counter(), "failed": Counter(), "results": Counter(),
        "report": os.environ.get("DENDRAX_FUZZ_REPORT")
        or str(tmp_path_factory.getbasetemp() / "fuzz_report.json")})


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    tally = config.stash.get(FUZZ_TALLY, None)
    if not tally or not tally["tried"]:
        return
    tried, failed = sum(tally["tried"].values()), sum(tally["failed"].values())
    report = {"tried": tried, "failed": failed, "by_target": {
        target: {"tried": n, "failed": tally["failed"][target],
                 **{result: count for (t, result), count in sorted(tally["results"].items())
                    if t == target}}
        for target, n in sorted(tally["tried"].items())}}
    path = tally["report"]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    terminalreporter.write_sep("-", "dendrax fuzz")
    terminalreporter.write_line(
        f"fuzz: {tried} generated inputs tried, {failed} failed ("
        + ", ".join(f"{t} {v['tried']}" for t, v in report["by_target"].items())
        + f"); written to {path}")
