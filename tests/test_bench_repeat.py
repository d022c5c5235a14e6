"""bench/run.py's repeated target cells: the run reported is the median one, all runs listed."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def run():
    """bench/run.py, loaded under a name of its own; the path entry it adds and the bench
    modules it imports are taken away again afterwards, so no other test sees them."""
    path, modules = list(sys.path), set(sys.modules)
    spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if str(BENCH) in (getattr(sys.modules[name], "__file__", None) or ""):
            del sys.modules[name]


def trio(bare: float, signed: float, ours: float) -> dict:
    return {"bare": {"rps": bare}, "signed": {"rps": signed}, "ours": {"rps": ours}}


def test_the_run_with_the_median_ratio_is_reported_with_every_runs_ratio_in_order(run):
    runs = [trio(4000, 3000, 1800), trio(4000, 2000, 1000), trio(4000, 3000, 1650)]  # 0.60, 0.50, 0.55
    chosen = run.median_run(runs)
    assert chosen["ours"] is runs[2]["ours"] and chosen["signed"] is runs[2]["signed"]
    assert chosen["repeat_ratios"] == [0.6, 0.5, 0.55]
    assert chosen["repeat_chosen"] == 3


def test_an_even_number_of_runs_reports_the_lower_middle_one(run):
    runs = [trio(1, 100, 70), trio(1, 100, 40), trio(1, 100, 60), trio(1, 100, 50)]
    chosen = run.median_run(runs)
    assert chosen["ours"]["rps"] == 50 and chosen["repeat_chosen"] == 4


def test_a_single_run_is_reported_as_it_is(run):
    only = trio(4000, 3000, 1800)
    assert run.median_run([only]) == only


def test_a_run_whose_floor_served_nothing_counts_as_the_lowest_ratio(run):
    runs = [trio(1, 0, 10), trio(1, 100, 60), trio(1, 100, 50)]
    chosen = run.median_run(runs)
    assert chosen["ours"]["rps"] == 50 and chosen["repeat_ratios"] == [0.0, 0.6, 0.5]
