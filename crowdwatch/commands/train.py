"""``crowdwatch train CONFIG``: train P2PNet in a run directory, in chunks that resume exactly.

The run itself is :class:`crowdwatch.train.trainer.Trainer`. This command applies the overrides,
writes the run's ``config.yaml``, and turns SIGTERM / SIGINT into a clean stop: the first signal ends
the run after the current step and saves it, a second interrupts at once.
"""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path

import torch
import yaml

from crowdwatch.errors import UsageError
from crowdwatch.train.config import TrainConfig, load_train_config
from crowdwatch.train.trainer import STATE_FILE, Trainer

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crowdwatch train", description="Train P2PNet on point-annotated images."
    )
    parser.add_argument("config", type=Path, help="training YAML (see configs/train_example.yaml)")
    parser.add_argument("--out", type=Path, help="run directory (default: runs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    parser.add_argument("--max-steps", type=int, help="stop after this many more steps (a chunk)")
    parser.add_argument("--max-minutes", type=float, help="stop after this many minutes (a chunk)")
    parser.add_argument("--device", help="override train.device (auto, cpu, cuda[:i])")
    parser.add_argument("--threads", type=int, help="torch CPU threads (overrides train.threads)")
    parser.add_argument("--workers", type=int, help="DataLoader workers (overrides train.workers)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--export-last",
        type=Path,
        metavar="PATH",
        help="with --resume: write the network at the run's last step as a crowdwatch checkpoint (for "
        "crowdwatch evaluate, e.g. after a run stopped between validations) and exit without training",
    )
    parser.add_argument(
        "--half",
        action="store_true",
        help="with --export-last: store the weights as float16 (half the size; they load back as float32)",
    )
    return parser


def main(argv: list[str]) -> int:
    """Entry point of ``crowdwatch train``; returns the exit code."""
    args = build_parser().parse_args(argv)
    config = load_train_config(args.config)
    for flag in ("max_steps", "threads", "workers"):
        value = getattr(args, flag)
        if value is not None and value < (0 if flag == "workers" else 1):
            raise UsageError(f"--{flag.replace('_', '-')} must be positive, but got {value}")
    threads = args.threads or config.train.threads
    if threads:
        torch.set_num_threads(threads)
    out = args.out or Path("runs") / args.config.stem
    if args.export_last is not None:
        return export_last(config, out, args)
    if args.half:
        raise UsageError("--half only applies to --export-last")
    out.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(config, out, resume=args.resume, device=args.device, workers=args.workers)
    if not (out / "config.yaml").is_file():
        (out / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    previous = {sig: signal.signal(sig, trainer.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        trainer.run(max_steps=args.max_steps, max_minutes=args.max_minutes, progress=not args.no_progress)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    best = trainer.best
    logger.info(
        "stopped at step %d/%d after %.0f s of training; best validation MAE %s (step %s)",
        trainer.step,
        config.train.steps,
        trainer.elapsed_s,
        f"{best['mae']:.2f}" if best["step"] is not None else "n/a",
        best["step"],
    )
    return 0


def export_last(config: TrainConfig, out: Path, args: argparse.Namespace) -> int:
    """``--export-last PATH``: the network of the run's ``last.pt`` as a checkpoint; no training."""
    if not args.resume:
        raise UsageError("--export-last needs --resume: it exports the state of an existing run in --out")
    if args.max_steps is not None or args.max_minutes is not None:
        raise UsageError("--export-last trains nothing: drop --max-steps / --max-minutes")
    if not (out / STATE_FILE).is_file():
        # Trainer would start a fresh run here, and its untrained network is not a run's last step.
        raise UsageError(f"--export-last: {out} holds no run ({STATE_FILE}); name the run with --out")
    trainer = Trainer(config, out, resume=True, device=args.device, workers=args.workers)
    # No validation figures: this step may not have been validated (evaluate the file to get them).
    try:
        trainer.export(args.export_last, {}, half=args.half)
    finally:
        trainer.log.close()
    logger.info("wrote the network at step %d of %s to %s", trainer.step, out, args.export_last)
    return 0
