"""The training loop behind ``restcn-train``: data -> model -> SGD epochs -> run directory.

A run directory holds::

    checkpoint.pt   final weights, self-describing (format: restcn_training.checkpoint)
    last.pt         everything needed to continue exactly (written atomically every epoch)
    history.csv     epoch, lr, train_loss, train_acc, val_loss, val_acc, seconds
    metrics.json    final/best accuracy, per-class accuracy, confusion matrix, throughput

The recipe is the paper's (section 5.1): SGD with Nesterov momentum 0.9, lr 0.01, batch 128,
L1 1e-4 on every conv kernel, dropout 0.5, lr x0.1 when the validation loss plateaus
(``schedule="plateau"``) - plus a cosine schedule, label smoothing and augmentations of the raw
coordinates (:mod:`restcn_training.augment`). The headline metric is the FINAL epoch's accuracy;
the best epoch is reported only as such.

``ema > 0`` keeps an exponential moving average of the weights, BatchNorm statistics included
(``torch.optim.swa_utils.AveragedModel``, updated after every optimizer step:
``ema = decay * ema + (1 - decay) * weights``, starting from the weights after the first step).
Evaluation, metrics.json and checkpoint.pt then use the average (the checkpoint is still a plain
model state dict); last.pt holds both. It steadies the final epoch, whose accuracy otherwise
wobbles with the last few steps. Under DDP every rank keeps it on the unwrapped module; the
parameters agree by construction and the averaged BatchNorm statistics are averaged over ranks
after every epoch, like the model's own.

Batches are made on the device (:mod:`restcn_training.batches`): each rank holds its shard of
the training split as one tensor, and windowing, crop and the rigid transforms run as batched
tensor operations, the same on CPU and CUDA, pinned by tests to the per-sample numpy reference.

Determinism: the data order, the augmentation draws and mixup come from one CPU generator per
epoch and rank (:func:`restcn_training.batches.epoch_generator`: a function of seed, epoch and
rank), dropout from the torch RNG whose state (with python's and numpy's, per rank) is saved in
``last.pt`` - so ``resume`` continues exactly where the run stopped. On CUDA it uses mixed
precision (bf16 where supported, else fp16 with a GradScaler); under torchrun it trains
data-parallel (DDP), rank 0 writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from restcn_infer.atomic import atomic_write_text
from restcn_infer.envelope import envelope_of_split, unit_scale
from restcn_infer.output_paths import check_output_dir
from restcn_infer.spec import InputSpec, ModelSpec
from restcn_training import distributed
from restcn_training.batches import BatchDraws, DeviceSplit, epoch_generator
from restcn_training.checkpoint import (
    CHECKPOINT_FORMAT,
    Checkpoint,
    CheckpointError,
    atomic_torch_save,
    safe_torch_load,
)
from restcn_training.config import ConfigError, TrainConfig, recipe_difference
from restcn_training.data import load_training_data
from restcn_training.modality import ModalityFeatures
from restcn_training.registry import create_model
from restcn_training.run_setup import (
    EVAL_BATCH,
    autocast_precision,
    build_model_config,
    feature_mean,
    mixing,
    shard_indices,
    target_joints,
)
from restcn_training.run_state import (
    rng_state,
    seed_everything,
    set_rng_state,
    weights_digest,
    write_history,
)


class Reporter(Protocol):
    """What the CLI renders; the library never prints."""

    def on_epoch_start(self, epoch: int, epochs: int, steps: int) -> None: ...

    def on_step(self, step: int, loss: float, accuracy: float) -> None:
        """``step`` batches of the epoch done; running mean loss and accuracy over them. Called
        after every step on CPU, every few steps on CUDA (each call waits for the GPU)."""

    def on_epoch_end(self, row: dict[str, float]) -> None: ...


class SilentReporter:
    def on_epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        pass

    def on_step(self, step: int, loss: float, accuracy: float) -> None:
        pass

    def on_epoch_end(self, row: dict[str, float]) -> None:
        pass


class Trainer:
    """One run: owns the data, model, optimizer and schedule; :meth:`fit` does the epochs."""

    def __init__(self, cfg: TrainConfig, reporter: Reporter | None = None) -> None:
        cfg.validate()
        self.cfg = cfg
        self.reporter = reporter or SilentReporter()
        self.out = Path(cfg.out)
        if self.out.joinpath("last.pt").exists() and not cfg.resume:
            raise ConfigError(f"{self.out} already holds a run (last.pt); pass --resume to "
                              "continue it or choose another --out")
        # Refuse an --out that cannot be written now, before the data loads (not after an epoch).
        check_output_dir(self.out, what="--out")
        self.data = d = load_training_data(cfg.data, cfg.train_split, cfg.val_split, cfg.layout,
                                           holdout_fraction=cfg.holdout_fraction,
                                           holdout_match=cfg.holdout_match,
                                           holdout_seed=cfg.holdout_seed)
        self.input_spec = InputSpec(layout=d.layout, bodies=d.bodies, window=cfg.window,
                                    policy=cfg.window_policy, coords=d.coords)
        # The training bodies' envelope (restcn_infer.envelope): what the runtime compares every
        # input with (units, vertical axis, proportions, position); at most 2,000 sequences.
        # For 2-D keypoints it also fixes the input's unit (unit_scale, in the model config).
        envelope = envelope_of_split(d.train, d.layout)
        targets, targets_from = target_joints(cfg, self.input_spec)  # reads a diagnosis once
        self.model_config = build_model_config(cfg, self.input_spec, len(d.classes),
                                               unit_scale(envelope, d.coords), targets)
        self.ctx = distributed.setup(cfg.device)
        self.autocast_dtype, use_scaler = autocast_precision(self.ctx.device, cfg.precision)

        # Batches are made on the device (restcn_training.batches); each rank holds its shard.
        device, rank, world = self.ctx.device, self.ctx.rank, self.ctx.world_size
        self.augmentation = cfg.augmentation if cfg.augmentation.enabled else None
        train_shard = shard_indices(len(d.train), rank, world, cfg.seed)
        self.train_data = DeviceSplit(d.train, self.input_spec, device, train_shard)
        self.val_data = DeviceSplit(d.val, self.input_spec, device,
                                    np.arange(rank, len(d.val), world))
        features = ModalityFeatures(cfg.modality, tuple(self.model_config["parents"]),
                                    self.input_spec.D, self.input_spec.coords).to(device)
        self.mean = feature_mean(self.train_data if world == 1 else
                                 DeviceSplit(d.train, self.input_spec, device), features)
        #: The model description; its metrics are filled in when training ends.
        self.spec = ModelSpec(
            architecture=cfg.model, input=self.input_spec, classes=tuple(d.classes),
            mean=tuple(self.mean.tolist()), config=self.model_config,
            training={"data": str(cfg.data), "train_split": cfg.train_split,
                      "val_split": d.val_name, "seed": cfg.seed, "recipe": cfg.recipe(),
                      "command": cfg.command,
                      **({"target_joints_from": targets_from} if targets_from else {})})

        self.spec = dataclasses.replace(self.spec, envelope=envelope)

        seed_everything(cfg.seed)  # same initial weights on every rank
        self.model = create_model(cfg.model, self.model_config)
        self.model.set_mean(torch.from_numpy(self.mean))
        self.model.to(self.ctx.device)
        self.ema = (AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema),
                                  use_buffers=True) if cfg.ema else None)
        seed_everything(cfg.seed + 7919 * self.ctx.rank)  # per-rank dropout
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                         nesterov=cfg.momentum > 0, weight_decay=cfg.weight_decay)
        if cfg.schedule == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, cfg.epochs)
        else:
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, factor=0.1, patience=cfg.plateau_patience)
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
        self.history: list[dict[str, float]] = []
        self.best = {"val_acc": -1.0, "epoch": 0}
        self.train_seconds = 0.0
        self.train_samples = 0
        self.start_epoch = 0
        self.last_eval: dict[str, Any] = {}

        self.ddp_model: nn.Module = self.model
        if self.ctx.distributed:
            ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            self.ddp_model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.step_model = torch.compile(self.ddp_model) if cfg.compile else self.ddp_model

    @property
    def final_model(self) -> nn.Module:
        """The weights that are evaluated and saved: the EMA when there is one."""
        return self.ema.module if self.ema is not None else self.model

    # -- state ---------------------------------------------------------------------------------
    def _resume_state(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "kind": "resume", "recipe": self.cfg.recipe(),
                "epoch": len(self.history), "model": self.model.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "history": self.history, "best": self.best,
                "train_seconds": self.train_seconds, "train_samples": self.train_samples,
                "rng": distributed.all_gather_objects(self.ctx, rng_state()),
                "data_order": {"order": "epoch_generator(seed, epoch, rank)",
                               "seed": self.cfg.seed, "next_epoch": len(self.history)}}

    def _load_resume_state(self, path: Path) -> None:
        state = safe_torch_load(path, "resume state")
        if not isinstance(state, dict) or state.get("kind") != "resume":
            raise CheckpointError(f"{path}: not a restcn-train resume state")
        if state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path}: written by an older restcn (format "
                                  f"{state.get('format')}); it cannot be resumed by this one, "
                                  "start the run again in a new --out")
        diff = recipe_difference(state.get("recipe", {}), self.cfg.recipe())
        if diff:
            raise ConfigError(f"{path}: --resume with different arguments ({', '.join(diff)})")
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.history = list(state["history"])
        self.best = dict(state["best"])
        self.train_seconds = state["train_seconds"]
        self.train_samples = state["train_samples"]
        self.start_epoch = state["epoch"]
        rng = state["rng"]
        if len(rng) == self.ctx.world_size:
            set_rng_state(rng[self.ctx.rank])
        else:  # another world size: the run continues, dropout masks are not the same
            seed_everything(self.cfg.seed + 7919 * self.ctx.rank + 104729 * self.start_epoch)

    # -- loops ---------------------------------------------------------------------------------
    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.ctx.device.type, dtype=self.autocast_dtype)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over this rank's shard in epoch ``epoch``'s order (see :func:`epoch_generator`:
        the order, the augmentation draws and the mixing all come from it)."""
        cfg, device = self.cfg, self.ctx.device
        generator = epoch_generator(cfg.seed, epoch, self.ctx.rank)
        order = torch.randperm(len(self.train_data), generator=generator)
        batches = order.split(cfg.batch_size)
        lengths = self.train_data.lengths.cpu()
        model = self.step_model
        kernels = self.model.conv_kernels()
        model.train()
        # running sums stay on the device: reading them (.tolist()) waits for the GPU, so on
        # CUDA that happens only every `report_every` steps
        sums = torch.zeros(2, dtype=torch.float64, device=device)  # loss sum, correct
        seen, steps = 0, len(batches)
        report_every = 1 if device.type == "cpu" else 25
        self.reporter.on_epoch_start(epoch, cfg.epochs, steps)
        for step, index in enumerate(batches, 1):
            draws = (BatchDraws.draw(self.augmentation, lengths[index], generator)
                     if self.augmentation is not None else None)
            x, y = self.train_data.batch(index, draws)  # (B, T, D), (B,) on the device
            lam, partner = mixing(cfg.mixup, len(y), generator)
            if partner is not None:  # mixup of raw coordinates (and of the labels' losses)
                partner = partner.to(device)
                x = lam * x + (1.0 - lam) * x[partner]
            with self._autocast():
                logits = model(x)  # (B, classes)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
            if partner is not None:
                loss = lam * loss + (1.0 - lam) * F.cross_entropy(
                    logits.float(), y[partner], label_smoothing=cfg.label_smoothing)
            # L1 on every conv kernel: one fused norm over the list, no Python sum of tensors
            penalty = (cfg.l1 * torch.stack(torch._foreach_norm(kernels, 1)).sum()
                       if cfg.l1 else 0.0)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss + penalty).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            seen += len(y)
            sums += torch.stack([loss.detach().double() * len(y),
                                 (logits.argmax(1) == y).sum().double()])
            if step % report_every == 0 or step == steps:
                loss_sum, correct = sums.tolist()
                self.reporter.on_step(step, loss_sum / seen, correct / seen)
        distributed.average_buffers(self.ctx, self.model)
        if self.ema is not None:
            distributed.average_buffers(self.ctx, self.ema)
        totals = torch.cat([sums, sums.new_tensor([seen])])  # loss sum, correct, count
        loss_sum, correct, count = distributed.all_reduce_sum(self.ctx, totals).tolist()
        return {"train_loss": loss_sum / count, "train_acc": correct / count, "samples": int(count)}

    @torch.no_grad()
    def evaluate(self) -> dict[str, Any]:
        """Validation loss, accuracy and confusion matrix (rows: true class), all ranks summed."""
        n, k = len(self.data.val), len(self.data.classes)
        model = self.final_model
        model.eval()
        confusion = torch.zeros(k, k, dtype=torch.float64, device=self.ctx.device)
        loss_sum = torch.zeros(1, dtype=torch.float64, device=self.ctx.device)
        for index in torch.arange(len(self.val_data)).split(EVAL_BATCH):
            x, y = self.val_data.batch(index)  # (B, T, D), (B,)
            with self._autocast():
                logits = model(x).float()  # (B, classes)
            loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
            confusion.view(-1).index_add_(0, y * k + logits.argmax(1),
                                          torch.ones_like(y, dtype=torch.float64))
        distributed.all_reduce_sum(self.ctx, confusion)
        distributed.all_reduce_sum(self.ctx, loss_sum)
        confusion = confusion.cpu().long()
        return {"val_loss": loss_sum.item() / n, "val_acc": confusion.trace().item() / n,
                "confusion": confusion}

    def fit(self) -> dict[str, Any]:
        """Train the remaining epochs, write the run directory, return the metrics."""
        cfg, ctx = self.cfg, self.ctx
        last = self.out / "last.pt"
        if cfg.resume and last.exists():
            self._load_resume_state(last)
        for epoch in range(self.start_epoch, cfg.epochs):
            lr = self.optimizer.param_groups[0]["lr"]
            t0 = time.perf_counter()
            train = self.train_epoch(epoch)
            t_train = time.perf_counter() - t0
            self.last_eval = self.evaluate()
            if cfg.schedule == "plateau":
                self.scheduler.step(self.last_eval["val_loss"])
            else:
                self.scheduler.step()
            row = {"epoch": epoch + 1, "lr": lr, "train_loss": train["train_loss"],
                   "train_acc": train["train_acc"], "val_loss": self.last_eval["val_loss"],
                   "val_acc": self.last_eval["val_acc"], "seconds": time.perf_counter() - t0}
            self.history.append(row)
            self.train_seconds += t_train
            self.train_samples += train["samples"]
            if row["val_acc"] > self.best["val_acc"]:
                self.best = {"val_acc": row["val_acc"], "epoch": epoch + 1}
            state = self._resume_state()  # a collective under DDP: every rank builds it
            if ctx.is_main:
                atomic_torch_save(state, last)
                write_history(self.out / "history.csv", self.history)
            self.reporter.on_epoch_end(row)
        if not self.last_eval:  # resumed a finished run
            self.last_eval = self.evaluate()
        metrics = self.metrics()
        digests = distributed.all_gather_objects(self.ctx, weights_digest(self.final_model))
        metrics["replicas_identical"] = len(set(digests)) == 1
        if ctx.is_main:
            self.checkpoint(metrics).save(self.out / "checkpoint.pt")
            atomic_write_text(self.out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        distributed.barrier(ctx)
        distributed.cleanup(ctx)
        return metrics

    # -- outputs -------------------------------------------------------------------------------
    def metrics(self) -> dict[str, Any]:
        confusion = self.last_eval["confusion"]
        support = confusion.sum(1).clamp(min=1)
        per_class = (confusion.diag().double() / support).tolist()
        return {
            "final_val_accuracy": self.last_eval["val_acc"],
            "final_val_loss": self.last_eval["val_loss"],
            "best_val_accuracy": self.best["val_acc"],
            "best_epoch": self.best["epoch"],
            "epochs": len(self.history),
            "per_class_accuracy": dict(zip(self.data.classes, per_class)),
            "confusion_matrix": confusion.tolist(),
            "train_seconds": self.train_seconds,
            "train_samples_per_second": self.train_samples / max(self.train_seconds, 1e-9),
            "val_samples": len(self.data.val),
            "train_samples": len(self.data.train),
            "device": str(self.ctx.device),
            "world_size": self.ctx.world_size,
            "parameters": sum(p.numel() for p in self.model.parameters()),
        }

    def checkpoint(self, metrics: dict[str, Any]) -> Checkpoint:
        """The final checkpoint: the evaluated weights and the spec with its headline metrics."""
        headline = {k: metrics[k] for k in ("final_val_accuracy", "final_val_loss",
                                            "best_val_accuracy", "best_epoch", "epochs",
                                            "per_class_accuracy", "train_samples_per_second")}
        return Checkpoint.from_model(self.final_model, dataclasses.replace(self.spec,
                                                                           metrics=headline))


def train(cfg: TrainConfig, reporter: Reporter | None = None) -> dict[str, Any]:
    """Run (or ``cfg.resume``) a training run; returns the metrics written to metrics.json."""
    return Trainer(cfg, reporter).fit()
