"""The training loop: checkpoints, exact resume and best-model export (``crowdwatch train`` is
:mod:`crowdwatch.commands.train`).

A run lives in one directory (``--out``): ``last.pt`` (the full training state, written every
``checkpoint_every`` steps and whenever the run stops), ``best.pt`` (the network with the lowest
validation MAE so far, exported with :func:`crowdwatch.model.save_checkpoint`), ``log.csv`` (the
curves) and ``config.yaml`` (the config it was started with). A run can be stopped anywhere
(``--max-steps``, ``--max-minutes``, SIGTERM, SIGINT) and continued with ``--resume``; the data order
is a function of (seed, step), so the resumed run computes exactly what one uninterrupted run would.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from crowdwatch.data.folders import check_image, read_folder, split_items
from crowdwatch.errors import UsageError
from crowdwatch.model.checkpoint import save_checkpoint
from crowdwatch.model.precision import AUTOCAST_DTYPES, resolve_device, resolve_training_precision
from crowdwatch.train import build
from crowdwatch.train.augment import AugmentParams
from crowdwatch.train.config import TrainConfig
from crowdwatch.train.dataset import CropDataset, StepSampler, collate_crops
from crowdwatch.train.log import CurveLog
from crowdwatch.train.loss import p2p_loss
from crowdwatch.train.matcher import match_batch
from crowdwatch.train.provenance import training_provenance
from crowdwatch.train.state import load_state, save_state, set_rng_state
from crowdwatch.train.validate import ValImage, load_val_images, validate

logger = logging.getLogger(__name__)

STATE_FILE = "last.pt"
BEST_FILE = "best.pt"
LOG_FILE = "log.csv"


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


class Trainer:
    """Owns the network, optimiser and data of one run; :meth:`run` trains a chunk of it."""

    def __init__(
        self,
        config: TrainConfig,
        out: Path,
        *,
        resume: bool,
        device: str | None = None,
        workers: int | None = None,
    ) -> None:
        self.config, self.out = config, out
        opt = config.train
        self.device = resolve_device(device or opt.device, key="train.device")
        self.precision = resolve_training_precision(opt.precision, self.device)
        self.autocast_dtype = AUTOCAST_DTYPES[self.precision]
        self.workers = opt.workers if workers is None else workers
        self.names = config.dataset_names()
        folders = [
            read_folder(d.path, name) for d, name in zip(config.data.datasets, self.names, strict=True)
        ]
        self.train_items = [split_items(f, every=config.data.val_every, part="train") for f in folders]
        val_items = [split_items(f, every=config.data.val_every, part="val") for f in folders]
        if config.validation.max_images:
            val_items = [v[: config.validation.max_images] for v in val_items]
        self.val_items = [item for group in val_items for item in group]
        # every image's size from its header, now: an image over the cap is a clear error (exit 2)
        # before the run, not a worker's exception hours into it
        for item in [*(i for group in self.train_items for i in group), *self.val_items]:
            check_image(item.image, config.data.max_pixels)
        self.dataset = CropDataset(
            self.train_items,
            [d.weight for d in config.data.datasets],
            seed=config.seed,
            crops=opt.crops_per_image,
            params=AugmentParams(opt.crop_size, opt.scale[0], opt.scale[1], opt.flip),
            max_pixels=config.data.max_pixels,
        )
        self.net, self.init = build.build_net(config, config.seed)
        self.memory_format = torch.channels_last if opt.channels_last else torch.contiguous_format
        self.net.to(self.device).train()
        self.net.to(memory_format=self.memory_format)
        if self.device.type == "cuda":
            # every training batch has one shape (crop_size), so cuDNN's autotuning pays off at once
            torch.backends.cudnn.benchmark = True
        self.optimizer = build.build_optimizer(self.net, config)
        self.scheduler = build.build_scheduler(self.optimizer, config)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.step, self.elapsed_s = 0, 0.0
        self.best: dict[str, Any] = {"mae": math.inf, "step": None, "val": None}
        self.validated_step: int | None = None  # the last step validated, so the end is validated once
        out.mkdir(parents=True, exist_ok=True)
        state_path = out / STATE_FILE
        if resume and state_path.is_file():
            self._restore(load_state(state_path))
        elif not resume and state_path.is_file():
            raise UsageError(
                f"{out} already holds a run ({STATE_FILE}); pass --resume or choose another --out"
            )
        self.log = CurveLog(out / LOG_FILE, self.names, resume_step=self.step if resume else None)
        self._val_images: list[ValImage] | None = None
        self._stop_requested = False

    # -- state ---------------------------------------------------------------------------------
    def _restore(self, state: dict[str, Any]) -> None:
        if not self._same_config(state["config"]):
            raise UsageError(
                f"{self.out / STATE_FILE} was written with another config than this one; an exact resume "
                f"needs the same config (see {self.out / 'config.yaml'}), "
                "or start a new run with another --out"
            )
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.step, self.elapsed_s, self.best = state["step"], state["elapsed_s"], state["best"]
        # a state written before this key existed: its best step is the one step known to be validated
        self.validated_step = state.get("validated_step", self.best["step"])
        logger.info("resumed %s at step %d", self.out, self.step)

    def _same_config(self, saved: dict[str, Any]) -> bool:
        """Whether the run's saved config is this one. The saved one is read through today's schema
        first, so that a key added since the run began (at its default) does not refuse the resume."""
        current = self.config.model_dump(mode="json")
        if saved == current:
            return True
        try:
            upgraded = TrainConfig.model_validate(saved).model_dump(mode="json")
        except ValueError:  # pydantic's ValidationError: a config today's schema no longer accepts
            return False
        return bool(upgraded == current)

    def save(self) -> None:
        save_state(
            self.out / STATE_FILE,
            step=self.step,
            elapsed_s=self.elapsed_s,
            best=self.best,
            validated_step=self.validated_step,
            model=self.net.state_dict(),
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            scaler=self.scaler.state_dict(),
            config=self.config.model_dump(mode="json"),
            seed=self.config.seed,
        )

    def export(self, path: Path, val: dict[str, dict[str, float]], *, half: bool = False) -> None:
        """Write the network as a crowdwatch checkpoint whose provenance describes this run."""
        provenance = training_provenance(
            self.config,
            train_items=self.train_items,
            val_items=self.val_items,
            steps=self.step,
            wall_time_s=self.elapsed_s,
            device=self.device,
            precision=self.precision,
            init=self.init,
            val=val,
        )
        save_checkpoint(
            path, self.net, threshold=self.config.model.threshold, provenance=provenance, half=half
        )

    # -- training ------------------------------------------------------------------------------
    def _batches(self, stop: int) -> Iterator[tuple[torch.Tensor, list[torch.Tensor]]]:
        per_step = self.config.train.images_per_step
        loader = DataLoader(
            self.dataset,
            batch_size=per_step,
            sampler=StepSampler(self.step, stop, per_step),
            collate_fn=collate_crops,
            num_workers=self.workers,
            worker_init_fn=_worker_init,
            prefetch_factor=2 if self.workers else None,
            persistent_workers=False,
            pin_memory=self.device.type == "cuda",
            # Spawned, not forked: a forked worker can deadlock in OpenCV's or OpenMP's thread pool
            # when the parent has used it (seen here with one worker after an in-process chunk).
            multiprocessing_context="spawn" if self.workers else None,
        )
        return iter(loader)

    def train_step(self, images: torch.Tensor, targets: list[torch.Tensor]) -> dict[str, float]:
        images = images.to(self.device, non_blocking=True, memory_format=self.memory_format)
        with torch.autocast(
            self.device.type,
            dtype=self.autocast_dtype or torch.float32,
            enabled=self.autocast_dtype is not None,
        ):
            out = self.net(images)
        matches = match_batch(out["logits"], out["points"], targets)
        losses = p2p_loss(out["logits"], out["points"], targets, matches)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses["total"]).backward()  # type: ignore[no-untyped-call]  # unannotated in torch
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.config.train.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return {
            "loss": losses["total"].item(),
            "loss_cls": losses["cls"].item(),
            "loss_point": losses["point"].item(),
            "grad_norm": float(grad_norm),
        }

    def run_validation(self) -> dict[str, dict[str, float]] | None:
        if not self.val_items:
            return None
        if self._val_images is None:
            self._val_images = load_val_images(
                self.val_items, self.config.validation.longest_side, self.config.data.max_pixels
            )
        val = validate(
            self.net,
            self._val_images,
            threshold=self.config.model.threshold,
            device=self.device,
            autocast_dtype=self.autocast_dtype,
        )
        self.validated_step = self.step
        if val["all"]["mae"] < self.best["mae"]:
            self.best = {"mae": val["all"]["mae"], "step": self.step, "val": val}
            self.export(self.out / BEST_FILE, val)
        return val

    def request_stop(self, *_: object) -> None:
        """First signal: stop after the current step and save. Second: interrupt at once."""
        if self._stop_requested:
            raise KeyboardInterrupt
        self._stop_requested = True

    def run(
        self, *, max_steps: int | None = None, max_minutes: float | None = None, progress: bool = True
    ) -> list[dict[str, float]]:
        """Train until the run's end, ``max_steps`` more steps or ``max_minutes``; returns the rows."""
        cfg = self.config
        total = cfg.train.steps
        stop = total if max_steps is None else min(total, self.step + max_steps)
        deadline = None if max_minutes is None else time.monotonic() + 60 * max_minutes
        rows: list[dict[str, float]] = []
        bar = tqdm(
            total=total,
            initial=self.step,
            unit="step",
            desc="train",
            disable=not progress,
            dynamic_ncols=True,
            mininterval=1.0 if sys.stderr.isatty() else 30.0,
        )
        try:
            if self.step < stop:
                rows = self._run_steps(stop, deadline, bar)
            if self.step >= total and self.validated_step != self.step and self.val_items:
                self.run_validation()  # the end of the run is always validated, once
            self.save()
        finally:
            bar.close()
            self.log.close()
        return rows

    def _run_steps(self, stop: int, deadline: float | None, bar: tqdm[Any]) -> list[dict[str, float]]:
        cfg = self.config
        rows = []
        started = time.monotonic()
        chunk_start_elapsed = self.elapsed_s
        for images, targets in self._batches(stop):
            metrics = self.train_step(images, targets)
            self.step += 1
            self.elapsed_s = chunk_start_elapsed + time.monotonic() - started
            lrs = self.scheduler.get_last_lr()
            row = {
                "step": self.step,
                **metrics,
                "lr": float(lrs[0]),
                "lr_backbone": float(lrs[1]) if len(lrs) > 1 else 0.0,
                "elapsed_s": round(self.elapsed_s, 2),
            }
            val = None
            if self.step % cfg.validation.every_steps == 0 or self.step == cfg.train.steps:
                val = self.run_validation()
                self.elapsed_s = chunk_start_elapsed + time.monotonic() - started
            self.log.write(row, val)
            rows.append(row)
            bar.update(1)
            postfix = {
                "loss": f"{metrics['loss']:.4f}",
                "cls": f"{metrics['loss_cls']:.4f}",
                "pt": f"{metrics['loss_point']:.1f}",
            }
            if self.best["step"] is not None:
                postfix["best_mae"] = f"{self.best['mae']:.1f}"
            bar.set_postfix(postfix, refresh=False)
            if val is not None:
                per_dataset = ", ".join(f"{k} {v['mae']:.2f}" for k, v in val.items() if k != "all")
                logger.info(
                    "step %d: validation MAE %.2f RMSE %.2f (%s); probability mass %.2f and counted "
                    "%.2f of the true count",
                    self.step,
                    val["all"]["mae"],
                    val["all"]["rmse"],
                    per_dataset,
                    val["all"]["mass_ratio"],
                    val["all"]["counted_ratio"],
                )
            if self.step % cfg.train.checkpoint_every == 0:
                self.save()
            if self._stop_requested or (deadline is not None and time.monotonic() >= deadline):
                break
        return rows
