"""The running service: cameras -> shared model -> CSV, overlays and Prometheus, until SIGTERM.

:class:`Pipeline` (:mod:`~crowdwatch.pipeline.service`) assembles the rooms (``crowdwatch run CONFIG``, in
:mod:`crowdwatch.commands.run`, builds one and runs it); :mod:`~crowdwatch.pipeline.model` loads the model
or waits for the inference pool, :mod:`~crowdwatch.pipeline.outputs` builds the sinks.

Start-up order: config, the metrics port (bound first, so a port in use is found before the slow model
load), model, sinks, metrics server, worker, readers (each opens in its own thread,
so a camera that never comes up does not hold up the others), then READY=1 to systemd and the
progress-gated watchdog pinger. On SIGHUP (``systemctl reload``) the config file is read again and
applied without stopping the cameras that did not change (:mod:`crowdwatch.reload`). On
SIGTERM/SIGINT (or after ``--duration``): STOPPING=1, stop the
readers, finish the frames already taken, flush and close the sinks, stop the metrics server, all
within :data:`STOP_BUDGET_S`. A batch still inside the model when the worker's share of the budget
is spent is abandoned: the sinks are closed without its results, and the log says so. The caller
must end the process without finalizing the interpreter (``crowdwatch run`` always does, see
:mod:`crowdwatch.commands.run`): a thread inside a torch operator when the interpreter shuts down
aborts the process (SIGABRT or SIGSEGV instead of exit 0).
"""

from crowdwatch.pipeline.model import ServedModel
from crowdwatch.pipeline.service import (
    READER_STOP_S,
    SINK_CLOSE_S,
    STATUS_INTERVAL_S,
    STOP_BUDGET_S,
    Pipeline,
)

__all__ = ["READER_STOP_S", "SINK_CLOSE_S", "STATUS_INTERVAL_S", "STOP_BUDGET_S", "Pipeline", "ServedModel"]
