"""Run directories, per-step logs, summaries and learning-curve plots of the baselines.

No torch at import: sb3_ppo.py and evaluate.py use it too, and TensorBoard and matplotlib are
imported only when used.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from baselines.common import CommonArgs, FiniteGuard, Rollout


def reward_stats(rewards: np.ndarray, infos: list[dict[str, Any]], rollout: Rollout,
                 counts: dict[str, int]) -> dict[str, float]:
    """Per-step charts shared by both algorithms; ``counts`` accumulates invalid reasons."""
    for info in infos:
        if info["invalid_reason"]:
            counts[info["invalid_reason"]] = counts.get(info["invalid_reason"], 0) + 1
    names = infos[0]["metrics"].keys() if infos else []
    out = {"charts/reward_mean": float(rewards.mean()), "charts/reward_std": float(rewards.std())}
    out.update({f"metrics/{m}": float(np.mean([i["metrics"][m] for i in infos])) for m in names})
    out["charts/format_valid_rate"] = float(np.mean([i["format_valid"] for i in infos]))
    out["charts/truncated_rate"] = float((~rollout.closed).float().mean())
    out["charts/query_terms"] = float(np.mean([len(i["query"].split()) for i in infos]))
    out["charts/completion_tokens"] = float(rollout.mask.sum(1).mean())
    return out


def start_run(args: Any, algo: str) -> Path:
    """A new run directory ``env__exp__seed__time`` under ``args.runs_dir``, with ``args.json``
    (``args``: any dataclass with ``env_id``, ``exp_name``, ``seed`` and ``runs_dir``)."""
    name = f"{args.env_id}__{args.exp_name or algo}__{args.seed}__{int(time.time())}"
    run_dir = Path(args.runs_dir) / name
    run_dir.mkdir(parents=True, exist_ok=False)
    (run_dir / "args.json").write_text(json.dumps(dataclasses.asdict(args), indent=2))
    return run_dir


def write_summary(run_dir: Path, train_seconds: float, launched: float,
                  invalid: dict[str, int], guard: FiniteGuard) -> None:
    """``summary.json``: training and wall-clock time, CPU time, invalid-answer reasons and the
    last step whose loss and gradients were finite."""
    (run_dir / "summary.json").write_text(json.dumps(
        {"train_seconds": train_seconds, "wall_seconds": time.time() - launched,
         "process_cpu_seconds": time.process_time(),
         "invalid_reasons": invalid, "last_finite": guard.last},
        indent=2))


class RunLog:
    """Per-step CSV (``progress.csv``), TensorBoard when installed, and the closing plot."""

    def __init__(self, run_dir: Path, args: CommonArgs):
        self.run_dir = run_dir
        self.csv_path = run_dir / "progress.csv"
        self._file = self.csv_path.open("w", newline="")
        self._writer: csv.DictWriter | None = None
        self.tb = None
        if args.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                SummaryWriter = None
            if SummaryWriter is not None:
                self.tb = SummaryWriter(str(run_dir))
                self.tb.add_text("hyperparameters", "|param|value|\n|-|-|\n" + "\n".join(
                    f"|{k}|{v}|" for k, v in dataclasses.asdict(args).items()))

    def log(self, step: int, row: dict[str, float]) -> None:
        row = {"step": step, **row}
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=list(row))
            self._writer.writeheader()
        self._writer.writerow(row)
        self._file.flush()
        if self.tb is not None:
            for key, value in row.items():
                if key != "step":
                    self.tb.add_scalar(key, value, step)

    def close(self, title: str) -> Path:
        self._file.close()
        if self.tb is not None:
            self.tb.close()
        return plot_learning_curve(self.csv_path, self.run_dir / "learning_curve.png", title)


def moving_average(x: np.ndarray, window: int = 5) -> np.ndarray:
    """Trailing mean over up to ``window`` values (shorter at the start)."""
    c = np.cumsum(np.insert(np.asarray(x, dtype=float), 0, 0.0))
    n = np.minimum(np.arange(1, len(x) + 1), window)
    return (c[1:] - c[np.arange(1, len(x) + 1) - n]) / n


def plot_learning_curve(csv_path: Path, png_path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    col = {k: np.array([float(r[k]) for r in rows]) for k in (rows[0] if rows else {})}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    if rows:
        step, mean, std = col["step"], col["charts/reward_mean"], col["charts/reward_std"]
        axes[0].plot(step, mean, alpha=0.5, label="reward (mean of the step)")
        axes[0].fill_between(step, mean - std, mean + std, alpha=0.15, label="± std")
        axes[0].plot(step, moving_average(mean), color="black", label="moving average (5 steps)")
        axes[1].plot(step, col["charts/format_valid_rate"], label="format valid")
        axes[1].plot(step, col["charts/truncated_rate"], label="truncated")
        axes[2].plot(step, col["charts/query_terms"], label="query terms")
        if "charts/kl" in col and np.isfinite(col["charts/kl"]).any():
            twin = axes[2].twinx()
            twin.plot(step, col["charts/kl"], color="tab:red", label="KL")
            twin.set_ylabel("KL", color="tab:red")
    for ax, ylabel in zip(axes, ("reward", "rate", "terms")):
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(title)
    return _save(fig, png_path)


def plot_sb3_curve(csv_path: Path, png_path: Path, title: str) -> Path:
    """Mean episode reward over timesteps from stable-baselines3's ``progress.csv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with csv_path.open() as f:
        rows = [r for r in csv.DictReader(f) if r.get("rollout/ep_rew_mean")]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot([float(r["time/total_timesteps"]) for r in rows],
            [float(r["rollout/ep_rew_mean"]) for r in rows], label="episode reward (mean)")
    ax.set_xlabel("timesteps")
    ax.set_ylabel("reward")
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title)
    return _save(fig, png_path)


def _save(fig: Any, png_path: Path) -> Path:
    """Write a figure as a PNG and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path
