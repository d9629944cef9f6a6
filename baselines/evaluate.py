"""Evaluate LLM policies beside the env's reference policies, and summarise runs over seeds.

Greedy decoding on the test split and both OOD splits (``test_ood_category``,
``test_ood_phrasing``), scored with recgym's own ``evaluate`` (one batched ``score`` call per
batch), next to the ``identity`` and ``oracle`` reference policies. grpo.py and ppo.py call
:func:`evaluate_llm` before and after training; this file's command line re-evaluates a saved
checkpoint or summarises several runs (mean and spread across seeds)::

    python -m baselines.evaluate --model runs/RecQuery-v0__grpo__1__1700000000/checkpoint
    python -m baselines.evaluate --summarize runs/RecQuery-v0__grpo__*
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recgym.policies import evaluate, make_policy

METRICS = ("ndcg@100", "ndcg@10", "recall@100", "mrr@100")
REFERENCES = ("identity", "oracle")


def llm_policy(model: Any, tokenizer: Any, prompter: Any, batch_size: int,
               max_new_tokens: int) -> Any:
    """A recgym policy (observations, infos) -> actions that decodes greedily in batches."""
    from baselines.common import generate

    device = next(model.parameters()).device

    def policy(observations: list[str], infos: list[dict[str, Any]]) -> list[str]:
        actions: list[str] = []
        for start in range(0, len(observations), batch_size):
            enc = prompter.encode(observations[start : start + batch_size], device)
            actions += generate(model, tokenizer, enc, max_new_tokens, greedy=True).texts
        return actions

    return policy


def evaluate_llm(env: Any, policy: Any, splits: Sequence[str], limit: int) -> dict[str, Any]:
    """``{split: recgym evaluate() result}`` of one policy."""
    return {s: evaluate(env, policy, s, limit=limit or None) for s in splits}


def evaluate_references(env: Any, splits: Sequence[str], limit: int) -> dict[str, Any]:
    """The env's identity and oracle policies on the same tasks (oracle only where it exists)."""
    out = {}
    for name in REFERENCES:
        if name == "oracle" and env.unwrapped.world.oracle is None:
            continue
        out[name] = evaluate_llm(env, make_policy(name, env), splits, limit)
    return out


def markdown_table(results: dict[str, dict[str, Any]], metric: str = "ndcg@100") -> str:
    """Rows: policies; columns: ``metric`` (and the invalid-answer rate) per split."""
    splits = list(next(iter(results.values())))
    head = "| policy | " + " | ".join(f"{s} {metric}" for s in splits) + " | invalid (test) |"
    lines = [head, "|" + "---|" * (len(splits) + 2)]
    for name, per_split in results.items():
        cells = [f"{per_split[s]['metrics'][metric]:.4f}" for s in splits]
        invalid = per_split[splits[0]]["invalid_rate"]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {invalid:.2f} |")
    n = next(iter(next(iter(results.values())).values()))["n_tasks"]
    return "\n".join(lines) + f"\n\n(first {n} tasks of each split, greedy decoding)\n"


def write_eval(run_dir: Path, results: dict[str, dict[str, Any]]) -> str:
    """``eval.json`` and ``eval.md`` in the run directory; returns the markdown."""
    (run_dir / "eval.json").write_text(json.dumps(results, indent=2))
    table = markdown_table(results)
    (run_dir / "eval.md").write_text(table)
    return table


def summarize(run_dirs: Sequence[Path], metric: str = "ndcg@100") -> str:
    """Each policy's ``metric`` per split across runs (seeds), from the runs' ``eval.json``:
    ``mean ± std [min, max]``, and the same for the gain of trained over untrained."""
    evals = [json.loads((Path(d) / "eval.json").read_text()) for d in run_dirs]
    splits = list(evals[0]["identity"])
    rows: dict[str, list[list[float]]] = {}
    for ev in evals:
        for name, per_split in ev.items():
            rows.setdefault(name, []).append([per_split[s]["metrics"][metric] for s in splits])
        if "untrained" in ev and "trained" in ev:
            rows.setdefault("gain (trained - untrained)", []).append(
                [ev["trained"][s]["metrics"][metric] - ev["untrained"][s]["metrics"][metric]
                 for s in splits])
    lines = [f"| {metric}, {len(evals)} runs | " + " | ".join(splits) + " |",
             "|" + "---|" * (len(splits) + 1)]
    for name, values in rows.items():
        v = np.array(values)
        cells = [f"{m:.4f} ± {sd:.4f} [{lo:.4f}, {hi:.4f}]"
                 for m, sd, lo, hi in zip(v.mean(0), v.std(0), v.min(0), v.max(0))]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "| run | " + " | ".join(f"{s} untrained -> trained" for s in splits) + " |",
              "|" + "---|" * (len(splits) + 1)]
    for d, ev in zip(run_dirs, evals):
        if "trained" in ev and "untrained" in ev:
            cells = [f"{ev['untrained'][s]['metrics'][metric]:.4f} -> "
                     f"{ev['trained'][s]['metrics'][metric]:.4f}" for s in splits]
            lines.append(f"| {Path(d).name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n(mean ± population std [min, max] across runs)\n"


def plot_runs(run_dirs: Sequence[Path], png: Path, title: str) -> Path:
    """The 5-step moving average of the training reward of several runs (seeds) on one plot."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from baselines.runlog import moving_average

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for d in run_dirs:
        with (Path(d) / "progress.csv").open() as f:
            rows = list(csv.DictReader(f))
        steps = [int(r["step"]) for r in rows]
        reward = np.array([float(r["charts/reward_mean"]) for r in rows])
        ax.plot(steps, moving_average(reward), label=f"seed {Path(d).name.split('__')[2]}")
    ax.set_xlabel("step")
    ax.set_ylabel("training reward (5-step moving average)")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png


@dataclass
class Args:
    model: str = ""
    """checkpoint directory of a run (or any model grpo.py accepts) to evaluate"""
    summarize: str = ""
    """comma-separated run directories to summarise instead (their eval.json)"""
    plot: str = ""
    """with --summarize: also plot the runs' training rewards to this PNG"""
    env_id: str = "RecQuery-v0"
    """registered recgym id"""
    env_kwargs: str = "{}"
    """JSON keyword arguments of gym.make"""
    system_prompt: str = "auto"
    """as in grpo.py"""
    eval_splits: str = "test,test_ood_category,test_ood_phrasing"
    """comma-separated splits"""
    eval_limit: int = 96
    """first N tasks of each split (0: all)"""
    eval_batch_size: int = 32
    """prompts per generation batch"""
    max_new_tokens: int = 24
    """completion length cap"""
    device: str = "auto"
    """as in grpo.py"""
    out: str = ""
    """directory for eval.json / eval.md (default: print only)"""


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | str:
    from baselines.common import (
        CommonArgs,
        Prompter,
        context_length,
        load_policy,
        make_env,
        parse_args,
        resolve_device,
        system_message,
    )

    args = parse_args(Args, argv)
    if args.summarize:
        runs = [Path(p) for p in args.summarize.split(",") if p]
        text = summarize(runs)
        print(text)
        if args.plot:
            plot_runs(runs, Path(args.plot), f"{runs[0].name.split('__')[1]} on {args.env_id}")
        return text
    if not args.model:
        sys.exit("pass --model CHECKPOINT (or --summarize RUN_DIRS)")
    common = CommonArgs(model=args.model, env_id=args.env_id, env_kwargs=args.env_kwargs,
                        device=args.device, lora_r=0, train_layers=0)
    device, dtype = resolve_device(args.device, "auto")
    model, tokenizer, _ = load_policy(common, device, dtype)
    env = make_env(common)
    prompter = Prompter(tokenizer, system_message(args.system_prompt, env), context_length(model),
                        args.max_new_tokens)
    splits = args.eval_splits.split(",")
    results = evaluate_references(env, splits, args.eval_limit)
    policy = llm_policy(model, tokenizer, prompter, args.eval_batch_size, args.max_new_tokens)
    results["model"] = evaluate_llm(env, policy, splits, args.eval_limit)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        print(write_eval(Path(args.out), results))
    else:
        print(markdown_table(results))
    return results


if __name__ == "__main__":
    main()
