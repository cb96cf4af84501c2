"""SIGTERM ends `crowdwatch run` with exit 0, soon, even while the model is busy: real subprocesses.

- A model slower than the stop budget (tests/support/slow_pipeline.py: the real pipeline and exit path,
  with a model of real torch convolutions injected through the Pipeline's constructor): the signal
  arrives while the worker thread is inside torch. Finalizing the interpreter under such a thread
  aborted the process (SIGABRT, "terminate called without an active exception") or crashed it
  (SIGSEGV), in most trials but not all, so the test repeats it.
- Nothing runs after the final flush: an atexit hook that would hold the exit for minutes stands in
  for the interpreter's own shutdown work (its final garbage collection took 6-13 s under load).
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest
from support.pipeline_harness import SLOW_RUN, read_csv_rows, running_pipeline, write_config
from support.slow_pipeline import INSIDE_THE_MODEL

from crowdwatch.demo import make_demo_clip

#: Stop budget given to the slow pipeline: small, so that each trial is cheap.
SLOW_STOP_BUDGET_S = 2.0
#: Trials: a failure seen in 1 of 3 trials is missed by all 8 with probability (2/3)^8 < 4%.
TRIALS = 8
#: Start-up, the signal's delivery and the final flush on a loaded 2-core machine, beyond the budget.
EXIT_MARGIN_S = 8.0


def _config(tmp_path: Path) -> Path:
    clip = make_demo_clip(tmp_path / "clip.mp4", width=160, height=120, seconds=2, fps=10, people=3)
    camera = {"id": "cam", "url": str(clip), "fps": 5, "loop": True}
    output = {"dir": str(tmp_path / "out"), "snapshots": {"enabled": False}}
    return write_config(tmp_path / "site.yaml", [camera], output=output)


def _stop_inside_the_model(config: Path, log_dir: Path) -> tuple[int, float, str]:
    """One run of the slow pipeline, SIGTERM while a batch is inside the model: (exit code, s, logs)."""
    args = ("--predict-s", "120", "--stop-budget-s", str(SLOW_STOP_BUDGET_S))
    with running_pipeline(config, log_dir, args=args, command=SLOW_RUN) as pipeline:
        pipeline.wait_for("a batch inside the model", lambda: INSIDE_THE_MODEL in pipeline.logs(), 60)
        time.sleep(0.3)  # well inside torch's convolutions
        rc, seconds = pipeline.signal(signal.SIGTERM, timeout=SLOW_STOP_BUDGET_S + EXIT_MARGIN_S + 30)
    return rc, seconds, pipeline.logs()


@pytest.mark.slow
def test_sigterm_while_the_model_outlasts_the_stop_budget_exits_0_every_time(tmp_path: Path) -> None:
    config = _config(tmp_path)
    outcomes = []
    for trial in range(TRIALS):
        log_dir = tmp_path / f"trial{trial}"
        log_dir.mkdir()
        rc, seconds, logs = _stop_inside_the_model(config, log_dir)
        outcomes.append((rc, round(seconds, 2)))
        assert rc == 0, f"trial {trial}: exit {rc} after {seconds:.1f} s; outcomes {outcomes}\n{logs[-3000:]}"
        assert seconds < SLOW_STOP_BUDGET_S + EXIT_MARGIN_S, outcomes
        assert "a batch is still inside the model" in logs, logs[-3000:]
        assert logs.rstrip().endswith("stopped cleanly"), logs[-3000:]  # the last line was flushed
    read_csv_rows(tmp_path / "out")  # the CSV is whole: one header, no half row


def test_exit_after_sigterm_runs_nothing_after_the_final_flush(tmp_path: Path) -> None:
    config = _config(tmp_path)
    # The real command line, with an exit hook that would hold the process for 10 minutes.
    hook = "import atexit, sys, time; atexit.register(time.sleep, 600); from crowdwatch.cli import main; "
    command = (sys.executable, "-c", hook + "sys.exit(main())", "run")
    with running_pipeline(config, tmp_path, command=command) as pipeline:
        pipeline.wait_for(
            "a frame processed",
            lambda: (pipeline.value("crowdwatch_frames_processed_total", camera="cam") or 0) >= 1,
            timeout=120,
            interval=0.5,
        )
        # The pipeline's own stop budget is 9 s; the README and docs/deployment.md promise exit within 10 s.
        rc, seconds = pipeline.signal(signal.SIGTERM, timeout=60)
    logs = pipeline.logs()
    assert rc == 0, logs[-3000:]
    assert seconds < 10 + EXIT_MARGIN_S, logs[-3000:]
    assert logs.rstrip().endswith("stopped cleanly"), logs[-3000:]
    assert read_csv_rows(tmp_path / "out"), "no CSV row was flushed"
