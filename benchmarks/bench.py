"""metabac's performance benchmark (issue 9): the engine's tasks on seeded simulated data, with peers where they exist.

Run from the repository root:

    .venv/bin/python benchmarks/bench.py            # all rows; peers need `pip install -e '.[bench]'`
    .venv/bin/python benchmarks/bench.py --startup-only   # import, pool (beside R's metafor), report, workers

Each time is the best of at least ``--repeat`` runs, and of as many more as fill half a second (wall clock,
``time.perf_counter``, garbage collector paused as in :mod:`timeit`), so that other load on the machine counts as
little as possible. Peak memory is measured in a separate run under ``tracemalloc``: the largest amount
of memory allocated during the task beyond what existed before it (so the inputs are not counted). The commands
(``import metabac``, ``metabac pool``, ``metabac report``) run as new processes, in turn with their peer, and give
the best run (the median in the notes) and the process's maximum resident set size. The ratio is peer time /
metabac time (above 1: metabac is faster). A peer that is not installed is skipped with a line saying so.
"""

from __future__ import annotations

import argparse
import compileall
import datetime
import gc
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import metabac as mb

ROOT = Path(__file__).resolve().parent.parent
SEED = 20240901


@dataclass
class Row:
    task: str
    seconds: float
    peak_bytes: float
    target: float | None
    peer: str = ""
    peer_seconds: float | None = None
    note: str = ""


def best_time(task: Callable[[], object], repeat: int, min_total: float = 0.5) -> float:
    """The shortest wall-clock time over at least ``repeat`` runs, and more until the runs took ``min_total``
    seconds in all (after one warm-up run): a task of milliseconds gets a hundred runs, so that its minimum is not
    set by whatever else a shared machine was doing during five of them.

    Runs are timed with the garbage collector paused, as :mod:`timeit` does: a full collection walks every object
    that numpy, scipy and pandas created on import (about 40 ms here), and whether one falls inside a run of 0.1 s
    depends on what ran before, not on the task (1000 separate pool calls took 108 to 198 ms with it running).
    """
    task()
    times: list[float] = []
    while len(times) < repeat or sum(times) < min_total:
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            task()
            times.append(time.perf_counter() - start)
        finally:
            gc.enable()
    return min(times)


def peak_memory(task: Callable[[], object]) -> float:
    """Bytes allocated at the peak of one run of ``task``, beyond what was allocated before it."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    task()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - base


def simulated(batch: int, k: int, tau2: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Effect sizes y ~ N(0.3, v + tau²) with sampling variances v ~ U(0.01, 0.2)."""
    v = rng.uniform(0.01, 0.2, (batch, k))
    return rng.normal(0.3, np.sqrt(v + tau2)), v


def measure(task: str, run: Callable[[], object], target: float | None, repeat: int) -> Row:
    return Row(task, best_time(run, repeat), peak_memory(run), target)


def with_peer(row: Row, name: str, run: Callable[[], object] | None, repeat: int, note: str = "") -> Row:
    """Time a peer doing the same work, or say why it was skipped."""
    row.peer = name
    if run is None:
        print(f"skipped peer {name}: not installed (pip install -e '.[bench]')")
        note = "peer not installed"
    else:
        row.peer_seconds = best_time(run, repeat)
    row.note = "; ".join(part for part in (row.note, note) if part)
    return row


def pymare_reml() -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """PyMARE's REML over many datasets at once (its multi-dataset mode: y and v of shape (k, datasets))."""
    try:
        from pymare.estimators import VarianceBasedLikelihoodEstimator
    except ImportError:
        return None

    def fit(y: np.ndarray, v: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator = VarianceBasedLikelihoodEstimator(method="REML")
            estimator.fit(y.T, v.T, np.ones((y.shape[1], 1)))
        return np.ravel(estimator.params_["tau2"])

    return fit


def statsmodels_combine(method_re: str) -> Callable[[np.ndarray, np.ndarray], list] | None:
    """statsmodels' combine_effects, one call per analysis."""
    try:
        from statsmodels.stats.meta_analysis import combine_effects
    except ImportError:
        return None

    def fit(y: np.ndarray, v: np.ndarray) -> list:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [combine_effects(y[i], v[i], method_re=method_re) for i in range(len(y))]

    return fit


def separate_calls(y: np.ndarray, v: np.ndarray, method: str) -> np.ndarray:
    return np.array([mb.pool(y[i], v[i], method=method).tau2 for i in range(len(y))])


def engine_rows(repeat: int) -> list[Row]:
    rng = np.random.default_rng(SEED)
    rows = []

    y, v = simulated(1000, 20, 0.05, rng)
    batched = mb.pool(y, v, method="REML")
    one_by_one = separate_calls(y, v, "REML")
    row = measure("1000 REML fits, k = 20, one batched call", lambda: mb.pool(y, v, method="REML"), 0.005, repeat)
    reml = pymare_reml()
    note = ""
    if reml is not None:
        note = f"max abs tau2 difference from PyMARE {np.max(np.abs(reml(y, v) - batched.tau2)):.1e}"
    rows.append(with_peer(row, "PyMARE REML, 1000 datasets in one fit", None if reml is None else lambda: reml(y, v),
                          repeat, note))

    row = measure("1000 REML fits, k = 20, 1000 separate pool calls", lambda: separate_calls(y, v, "REML"), 0.15,
                  max(1, repeat // 2))
    row.note = f"max abs tau2 difference from the batched call {np.max(np.abs(one_by_one - batched.tau2)):.1e}"
    pm = statsmodels_combine("iterated")
    rows.append(with_peer(row, "statsmodels combine_effects 'iterated' (Paule-Mandel; it has no REML)",
                          None if pm is None else lambda: pm(y, v), max(1, repeat // 2)))

    row = measure("1000 PM fits, k = 20, 1000 separate pool calls", lambda: separate_calls(y, v, "PM"), None,
                  max(1, repeat // 2))
    if pm is not None:
        ours = separate_calls(y, v, "PM")
        theirs = np.array([result.tau2 for result in pm(y, v)])
        row.note = f"max abs tau2 difference from statsmodels {np.max(np.abs(ours - theirs)):.1e}"
    rows.append(with_peer(row, "statsmodels combine_effects 'iterated' (the same estimator)",
                          None if pm is None else lambda: pm(y, v), max(1, repeat // 2)))

    y_big, v_big = (a[0] for a in simulated(1, 10**6, 0.05, rng))
    rows.append(measure("REML, k = 1,000,000", lambda: mb.pool(y_big, v_big, method="REML"), 0.1, repeat))

    y20, v20 = (a[0] for a in simulated(1, 20, 0.05, rng))
    x = rng.normal(size=20)
    regression = mb.metareg(y20 + 0.1 * x, v20, x, method="REML")
    rows.append(measure("1000-permutation meta-regression test, k = 20 (REML)",
                        lambda: regression.permutation_test(n=1000, seed=1), 0.1, repeat))

    y16, v16 = (a[0] for a in simulated(1, 16, 0.05, rng))
    rows.append(measure("GOSH REML, k = 16 (65,535 subsets)", lambda: mb.gosh(y16, v16, method="REML"), 1.0,
                        max(1, repeat // 2)))
    y200, v200 = (a[0] for a in simulated(1, 200, 0.05, rng))
    rows.append(measure("leave-one-out REML, k = 200", lambda: mb.leave_one_out(y200, v200, method="REML"), 0.05,
                        repeat))
    v4 = v20[:4]
    rows.append(measure("coverage study: 10,000 simulated meta-analyses, k = 4, DL and REML, z and knha",
                        lambda: mb.simulate(v4, tau2=0.05, n=10_000, seed=1), None, repeat))
    rows += bayes_rows(rng, y20, v20, repeat)
    return rows


def bayes_rows(rng: np.random.Generator, y20: np.ndarray, v20: np.ndarray, repeat: int) -> list[Row]:
    """Issue 20's targets for mb.bayes (half-normal(0.5) prior for tau, flat prior for mu)."""
    y10, v10 = y20[:10], v20[:10]
    one = measure("Bayesian random effects (exact quadrature), k = 10, one call",
                  lambda: mb.bayes(y10, v10), 0.01, repeat)
    y4, v4 = simulated(1000, 4, 0.05, rng)
    batch = measure("Bayesian random effects, 1000 analyses, k = 4, one batched call",
                    lambda: mb.bayes(y4, v4), 1.0, max(1, repeat // 2))
    return [one, batch]


def metabac_command() -> list[str]:
    script = Path(sys.executable).with_name("metabac")
    if script.exists():
        return [str(script)]
    found = shutil.which("metabac")
    return [found] if found else [sys.executable, "-c", "from metabac.cli import main; main()"]


# A 3-study table and the same analysis in R: escalc's log risk ratios, rma's REML fit with Wald tests, printed.
POOL_CSV = "study,ai,n1i,ci,n2i\nA,30,42,12,42\nB,6,88,9,92\nC,20,60,15,61\n"
METAFOR_SCRIPT = """suppressPackageStartupMessages(library(metafor))
d <- read.csv("data.csv")
es <- escalc("RR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d, slab = study)
print(rma(yi, vi, data = es, method = "REML"))
"""


def run_process(command: list[str], cwd: str | Path) -> tuple[float, int]:
    """Wall-clock seconds and maximum resident set size (bytes) of one run of ``command`` in a new process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)}: exit code {process.returncode}")
    return seconds, usage.ru_maxrss * 1024  # kibibytes on Linux


def side_by_side(tasks: dict[str, Callable[[], float]], runs: int) -> dict[str, list[float]]:
    """Each task run ``runs`` times (after one warm-up run each), in turn (A, B, A, B, ...), so that other load on
    a shared machine falls on all of them alike; the seconds of every run, by task."""
    for task in tasks.values():
        task()
    times: dict[str, list[float]] = {name: [] for name in tasks}
    for _ in range(runs):
        for name, task in tasks.items():
            times[name].append(task())
    return times


def spread(times: list[float]) -> str:
    return f"median {fmt_seconds(statistics.median(times))} of {len(times)} runs"


def metafor_available() -> str | None:
    """Why the metafor peer cannot run here, or None when Rscript and metafor are installed."""
    if shutil.which("Rscript") is None:
        return "Rscript not found"
    check = subprocess.run(["Rscript", "-e", "library(metafor)"], capture_output=True)
    return None if check.returncode == 0 else "R's metafor package not installed"


def startup_rows(runs: int) -> list[Row]:
    """Issue 19's start-up targets, each command in a new process as a user runs it: ``import metabac``;
    ``metabac pool`` on a 3-study CSV, with ``Rscript`` running the same analysis with metafor side by side (where
    R and metafor are installed); ``metabac report`` on the bundled trials.

    metabac's bytecode is compiled first, as ``pip install`` does for an installed package: under
    PYTHONDONTWRITEBYTECODE (set on some CI machines) an editable install would otherwise compile every module from
    source in each run, about 0.2 s that no installed copy pays."""
    compileall.compile_dir(str(ROOT / "metabac"), quiet=1)
    memory: dict[str, int] = {}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "data.csv").write_text(POOL_CSV)
        (Path(folder) / "pool.R").write_text(METAFOR_SCRIPT)

        def timed(name: str, command: list[str]) -> Callable[[], float]:
            def run() -> float:
                seconds, memory[name] = run_process(command, folder)
                return seconds
            return run

        imports = side_by_side({"import": timed("import", [sys.executable, "-c", "import metabac"]),
                                "python": timed("python", [sys.executable, "-c", "pass"])}, 2 * runs)
        python = fmt_seconds(min(imports["python"]))
        rows.append(Row("`import metabac` (new process)", min(imports["import"]), memory["import"], 0.35,
                        note=f"{spread(imports['import'])}; Python alone starts in {python}; memory is max RSS"))

        pool_tasks = {"metabac": timed("metabac", [*metabac_command(), "pool", "data.csv", "--measure", "RR"])}
        missing = metafor_available()
        if missing is None:
            pool_tasks["metafor"] = timed("metafor", ["Rscript", "pool.R"])
        else:
            print(f"skipped peer metafor: {missing}")
        pool = side_by_side(pool_tasks, 2 * runs)
        row = Row("`metabac pool data.csv --measure RR` (3 studies, REML; new process)", min(pool["metabac"]),
                  memory["metabac"], 0.4, peer="Rscript: metafor escalc + rma (REML), printed, run in turn",
                  note=spread(pool["metabac"]))
        if "metafor" in pool:
            row.peer_seconds = min(pool["metafor"])
            medians = statistics.median(pool["metafor"]) / statistics.median(pool["metabac"])
            row.note += f"; metafor {spread(pool['metafor'])}; ratio of medians {medians:.1f} (target >= 3)"
        else:
            row.note += f"; peer skipped: {missing}"
        rows.append(row)

        report = [*metabac_command(), "report", "--quiet", "--trials", str(ROOT / "trials"),
                  "--out", str(Path(folder) / "reports")]
        times = side_by_side({"report": timed("report", report)}, runs)["report"]
        rows.append(Row("`metabac report` end to end (bundled trials)", min(times), memory["report"], 2.0,
                        note=f"{spread(times)}; new process: includes Python start-up and imports; memory is max RSS"))
    return rows


def figure_worker_row(runs: int) -> Row | None:
    """Issue 19's item 8: writing the bundled report (12 figures as PNG and SVG, Markdown, HTML, JSON, CSV) with
    its figures rendered in forked workers, one per core (the default), against one process, run in turn in
    this process (the report built once). None where only one worker would run (one core, or no fork)."""
    from metabac.report import ReportOptions, build_report
    from metabac.report_figures import default_workers
    from metabac.report_files import write_report

    workers = default_workers()
    if workers <= 1:
        print("skipped the figure-worker comparison: one worker here (one core, or a platform without fork)")
        return None
    report = build_report(ReportOptions(trials_dir=ROOT / "trials"))
    with tempfile.TemporaryDirectory() as folder:

        def writing(count: int) -> Callable[[], float]:
            def run() -> float:
                gc.collect()
                start = time.perf_counter()
                write_report(report, Path(folder) / f"workers-{count}", workers=count)
                return time.perf_counter() - start
            return run

        times = side_by_side({"workers": writing(workers), "one": writing(1)}, runs)
    return Row(f"writing the bundled report, figures in {workers} forked workers (the default)", min(times["workers"]),
               0, None, peer="the same in one process", peer_seconds=min(times["one"]),
               note=f"{spread(times['workers'])}; one process {spread(times['one'])}")


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fmt_bytes(size: float) -> str:
    if not size:
        return "—"
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.0f} KiB"


def table(rows: list[Row]) -> str:
    lines = ["| task | metabac | peak memory | target | met | peer | peer time | peer / metabac | notes |",
             "| --- | ---: | ---: | ---: | :---: | --- | ---: | ---: | --- |"]
    for row in rows:
        met = "" if row.target is None else ("yes" if row.seconds <= row.target else "no")
        ratio = "—" if row.peer_seconds is None else f"{row.peer_seconds / row.seconds:.1f}"
        target = "—" if row.target is None else f"<= {fmt_seconds(row.target)}"
        lines.append(f"| {row.task} | {fmt_seconds(row.seconds)} | {fmt_bytes(row.peak_bytes)} | {target} | {met} "
                     f"| {row.peer or '—'} | {fmt_seconds(row.peer_seconds)} | {ratio} | {row.note} |")
    return "\n".join(lines)


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    import scipy

    return (f"{datetime.date.today().isoformat()}, {os.cpu_count()} cores ({model}), Python "
            f"{platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, metabac "
            f"{mb.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per task; the best is reported (default 5)")
    parser.add_argument("--no-report", action="store_true",
                        help="skip the rows that run new processes (import, pool, report) and the figure workers")
    parser.add_argument("--startup-only", action="store_true",
                        help="only the rows that run new processes (import, pool, report) and the figure workers")
    args = parser.parse_args()
    rows = [] if args.startup_only else engine_rows(args.repeat)
    if not args.no_report:
        rows += startup_rows(args.repeat)
        workers = figure_worker_row(args.repeat)
        rows += [workers] if workers is not None else []
    print(machine())
    print(f"best of at least {args.repeat} runs and 0.5 s of runs per task (separate calls and GOSH: at least "
          f"{max(1, args.repeat // 2)} runs); new processes: best of {2 * args.repeat} runs (import, pool) or "
          f"{args.repeat} (report, figure workers), run in turn with their peer")
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
