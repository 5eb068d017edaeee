"""The hostile-input harness: run one bad command, classify what happened, record it.

Every case of tests/test_hostile_*.py goes through `check(...)`, which runs the real `mmtok`
entry point (`mmtok.cli.main.run`, in-process, or the console script in a subprocess when a
case needs a real process: resource limits, signals) and sorts the result into one outcome:

    clean           exit 1, and stderr is exactly one `error:` line naming the expected file
                    or option (no third-party warnings, progress bars or notes around it;
                    mmtok's own progress lines, `OWN_PROGRESS`, may precede it)
    traceback       an exception escaped, a traceback was printed, or the last-resort
                    boundary fired ("unexpected ..."): a failure no check anticipated
    silent_success  exit 0: the bad input was accepted
    partial         a file or folder was left behind (temp files and empty folders included)
    hang            the command did not finish within its time limit
    unclear         none of the above, but not one clear line either (several lines, another
                    exit status, or the line does not name what it should)

The case fails unless the outcome is "clean". Outcomes are collected in RESULTS; the test
session prints the counts by class (see conftest.pytest_terminal_summary), and writes them as
JSON to $MMTOK_HOSTILE_REPORT when set.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

OUTCOMES = ("clean", "traceback", "silent_success", "partial", "hang", "unclear")
OWN_PROGRESS = ("loading ",)  # `mmtok extend` says what it loads before loading it
MMTOK = Path(sys.executable).parent / "mmtok"


@dataclass
class Result:
    klass: str
    case: str
    outcome: str
    status: int | None
    stderr: str
    left_behind: list[str]
    process: bool


RESULTS: list[Result] = []


class _Hang(BaseException):
    """Raised by the alarm in an in-process run (BaseException: no handler may swallow it)."""


def snapshot(roots: list[Path]) -> set[str]:
    """Every path (files and folders, hidden ones too) under `roots`."""
    found: set[str] = set()
    for root in roots:
        if root.exists():
            found.add(str(root))
            found.update(str(p) for p in root.rglob("*"))
    return found


def run_in_process(args: list[str], timeout: float) -> tuple[int | None, str, str, bool, bool]:
    """(status, stdout, stderr, raised, hung) of `mmtok ARGS` run in this process."""
    from mmtok.cli.main import run

    out, err = io.StringIO(), io.StringIO()

    def alarm(signum, frame):
        raise _Hang()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    status, raised, hung = None, False, False
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = run(args)
    except _Hang:
        hung = True
    except BaseException as exc:  # noqa: BLE001 -- an escaped exception is an outcome
        import traceback

        raised = True
        err.write("Traceback (escaped run()):\n" + "".join(traceback.format_exception(exc)))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return status, out.getvalue(), err.getvalue(), raised, hung


def run_process(args: list[str], timeout: float, preexec=None, env: dict | None = None) -> tuple[int | None, str, str, bool, bool]:
    """The same for the console script in its own process group (killed whole on timeout)."""
    env = dict(os.environ if env is None else env, OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    proc = subprocess.Popen([str(MMTOK), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True, preexec_fn=preexec)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return None, out, err, False, True
    return proc.returncode, out, err, False, False


def classify(status, stderr: str, raised: bool, hung: bool, left: list[str], needles: list[str]) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    if hung:
        return "hang"
    if raised or "Traceback" in stderr or any(line.startswith("error: unexpected ") for line in errors):
        return "traceback"
    if status == 0:
        return "silent_success"
    if left:
        return "partial"
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith(OWN_PROGRESS)]
    if status != 1 or len(errors) != 1 or lines != errors or not all(n in errors[0] for n in needles):
        return "unclear"
    return "clean"


def check(klass: str, case: str, args: list, names: str | list[str], watch: Path | list[Path], *,
          timeout: float = 120, process: bool = False, preexec=None) -> Result:
    """Run `mmtok ARGS`, classify and record the outcome, and assert it is "clean": exit 1,
    one `error:` line containing each of `names`, nothing new under `watch`."""
    args = [str(a) for a in args]
    needles = [names] if isinstance(names, str) else list(names)
    roots = [watch] if isinstance(watch, Path) else list(watch)
    before = snapshot(roots)
    runner = run_process if process else run_in_process
    status, stdout, stderr, raised, hung = (runner(args, timeout, preexec) if process else runner(args, timeout))
    left = sorted(snapshot(roots) - before)
    outcome = classify(status, stderr, raised, hung, left, needles)
    result = Result(klass, case, outcome, status, stderr[-3000:], left[:10], process)
    RESULTS.append(result)
    assert outcome == "clean", (
        f"{klass}/{case}: {outcome} (exit {status}); expected one error line naming {needles}\n"
        f"left behind: {left[:10]}\nstdout: {stdout[-1500:]}\nstderr: {stderr[-3000:]}"
    )
    return result


def record(klass: str, case: str, outcome: str, detail: str = "") -> None:
    """Record a case checked by its own assertions (e.g. a per-item failure that must not
    stop a run); `outcome` as in OUTCOMES."""
    RESULTS.append(Result(klass, case, outcome, None, detail[-3000:], [], False))


def summary_rows() -> list[dict]:
    """Counts by class: cases and each outcome."""
    rows: dict[str, dict] = {}
    for r in RESULTS:
        row = rows.setdefault(r.klass, {"class": r.klass, "cases": 0, **{o: 0 for o in OUTCOMES}})
        row["cases"] += 1
        row[r.outcome] += 1
    return sorted(rows.values(), key=lambda row: row["class"])


def report_json() -> dict:
    return {"summary": summary_rows(), "cases": [asdict(r) for r in RESULTS]}


# -- helpers shared by the case files --------------------------------------------------------------
def make_fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def read_only_place() -> Path:
    """An output location nobody may write to, even root: /sys is mounted read-only for new
    files on Linux (chmod 555 does not stop root)."""
    return Path("/sys/mmtok-hostile-output")


def disk_full(limit_bytes: int = 4096):
    """`preexec_fn` for a subprocess whose file writes fail past `limit_bytes` (EFBIG, as a
    full disk fails them with ENOSPC): RLIMIT_FSIZE, with SIGXFSZ ignored so the write
    returns the error instead of killing the process."""
    import resource

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return limit
