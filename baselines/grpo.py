"""GRPO (Group Relative Policy Optimisation) for a causal LM that writes queries for recgym.

Each step samples G completions for each of a batch of training requests, scores all of them
with ONE ``env.unwrapped.score`` call, normalises each reward by its group's mean and std
(the advantage), and maximises the clipped policy ratio times that advantage, optionally with a
KL penalty to the frozen starting model. Docs: docs/baselines.md.

    python -m baselines.grpo --help
    python -m baselines.grpo --seed 1 --torch-threads 1      # the quick CPU configuration
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from baselines.common import (
    CommonArgs,
    FiniteGuard,
    Prompter,
    TaskStream,
    clipped_surrogate,
    completion_forward,
    context_length,
    frozen_reference,
    generate,
    kl_k3,
    load_policy,
    make_env,
    parse_args,
    reference_logp,
    resolve_device,
    save_checkpoint,
    seed_everything,
    system_message,
)
from baselines.evaluate import evaluate_llm, evaluate_references, llm_policy, write_eval
from baselines.runlog import RunLog, reward_stats, start_run, write_summary


@dataclass
class Args(CommonArgs):
    prompts_per_step: int = 4
    """training requests per step"""
    micro_batch_size: int = 24
    """completions per forward/backward pass; gradients accumulate over a step's batch"""
    group_size: int = 6
    """G: completions sampled per request; the advantage compares them with each other"""
    clip_eps: float = 0.2
    """clipping range of the policy ratio"""
    num_iterations: int = 1
    """optimisation passes over each batch (with 1 the ratio is 1 and clipping never binds)"""
    kl_coef: float = 0.0
    """beta: weight of the per-token KL to the frozen starting model (0: no reference pass)"""
    scale_rewards: bool = True
    """divide each group's centred rewards by the group's std (False: Dr. GRPO's centring only)"""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.group_size < 2:
            raise ValueError(
                f"group_size must be at least 2, got {self.group_size}: GRPO's advantage is a "
                f"reward minus its group's mean, divided by the group's std, which one "
                f"completion per request leaves undefined. Use ppo.py (a learned value baseline) "
                f"for one sample per request."
            )
        if self.num_iterations < 1 or not self.clip_eps > 0 or self.kl_coef < 0:
            raise ValueError("num_iterations must be >= 1, clip_eps > 0 and kl_coef >= 0")


# ALGO LOGIC: advantages and loss
def group_advantages(rewards: np.ndarray, group_size: int, scale: bool) -> np.ndarray:
    """(r - mean of its group) / (std of its group + 1e-4); groups are consecutive."""
    r = rewards.reshape(-1, group_size)
    adv = r - r.mean(axis=1, keepdims=True)
    if scale:
        adv = adv / (r.std(axis=1, keepdims=True) + 1e-4)
    return adv.reshape(-1)


def policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor,
                mask: torch.Tensor, ref_logp: torch.Tensor | None, args: Args,
                n_tokens: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped surrogate (+ beta * KL) summed over this micro-batch's completion tokens and
    divided by the tokens of the whole step, so that accumulated micro-batches give the token
    mean over the step."""
    loss, n_clipped = clipped_surrogate(logp, old_logp, adv[:, None], mask, args.clip_eps)
    stats = {"clipped": float(n_clipped)}
    if ref_logp is not None:
        kl = (kl_k3(logp, ref_logp) * mask).sum()
        loss = loss + args.kl_coef * kl
        stats["kl"] = float(kl.detach())
    return loss / n_tokens, stats


def main(argv: Sequence[str] | None = None) -> Path:
    args = parse_args(Args, argv)
    launched = time.time()
    # SET-UP
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    rng = seed_everything(args.seed)
    device, dtype = resolve_device(args.device, args.dtype)
    env = make_env(args)
    base = env.unwrapped
    model, tokenizer, base_dir = load_policy(args, device, dtype)
    ref_model = frozen_reference(model, args.kl_coef)
    prompter = Prompter(tokenizer, system_message(args.system_prompt, env),
                        context_length(model), args.max_new_tokens)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.learning_rate, weight_decay=0.0)
    run_dir = start_run(args, "grpo")
    log = RunLog(run_dir, args)
    print(f"run {run_dir}: {sum(p.numel() for p in trainable):,} trainable parameters on {device}")

    # EVALUATION before training
    splits = args.eval_splits.split(",")
    greedy = llm_policy(model, tokenizer, prompter, args.eval_batch_size, args.max_new_tokens)
    results = evaluate_references(env, splits, args.eval_limit)
    if args.eval_before:
        results["untrained"] = evaluate_llm(env, greedy, splits, args.eval_limit)

    # TRAINING LOOP
    tasks, guard, invalid = TaskStream(env, args.train_limit, rng), FiniteGuard(), {}
    G = args.group_size
    start = time.time()
    for step in range(1, args.total_steps + 1):
        t0 = time.time()
        rows = np.repeat(tasks.take(args.prompts_per_step), G)
        obs = [base.render_prompt(base.tasks[r].request) for r in rows]
        rollout = generate(model, tokenizer, prompter.encode(obs, device), args.max_new_tokens,
                           args.temperature)
        t1 = time.time()
        rewards, infos = base.score(rows.tolist(), rollout.texts)  # one batched retrieval
        t2 = time.time()
        adv = torch.tensor(group_advantages(rewards, G, args.scale_rewards), dtype=torch.float32,
                           device=device)
        mask = rollout.mask.float()
        n_tokens = max(float(mask.sum()), 1.0)
        micro = [slice(i, i + args.micro_batch_size)
                 for i in range(0, len(rollout), args.micro_batch_size)]
        old = None
        if args.num_iterations > 1:
            with torch.no_grad():
                old = torch.cat([completion_forward(model, rollout, mb, args.temperature)[0]
                                 for mb in micro])
        totals = {"loss": 0.0, "clipped": 0.0, "kl": 0.0, "entropy": 0.0}
        for _ in range(args.num_iterations):
            for mb in micro:
                logp, entropy, _ = completion_forward(model, rollout, mb, args.temperature)
                old_mb = logp.detach() if old is None else old[mb]
                ref = (reference_logp(model, ref_model, rollout, mb, args.temperature)
                       if args.kl_coef > 0 else None)
                loss, stats = policy_loss(logp, old_mb, adv[mb], mask[mb], ref, args, n_tokens)
                guard.check(step, loss=loss.item())
                loss.backward()
                totals["loss"] += loss.item() / args.num_iterations
                totals["clipped"] += stats["clipped"] / args.num_iterations
                totals["kl"] += stats.get("kl", 0.0) / args.num_iterations
                totals["entropy"] += float((entropy * mask[mb]).sum()) / args.num_iterations
            grad_norm = float(torch.nn.utils.clip_grad_norm_(trainable, args.max_grad_norm))
            guard.check(step, loss=totals["loss"], grad_norm=grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        t3 = time.time()

        # LOGGING
        row = reward_stats(rewards, infos, rollout, invalid)
        step_time = t3 - t0
        row.update({
            # KL to the starting model is only computed when it is penalised.
            "charts/kl": totals["kl"] / n_tokens if args.kl_coef > 0 else float("nan"),
            "charts/entropy": totals["entropy"] / n_tokens,
            "charts/tokens_per_s": float(mask.sum()) / max(t1 - t0, 1e-9),
            "charts/prompts_seen": step * args.prompts_per_step,
            "losses/policy": totals["loss"],
            "losses/clip_frac": totals["clipped"] / n_tokens,
            "losses/grad_norm": grad_norm,
            "time/generate_s": t1 - t0,
            "time/reward_s": t2 - t1,
            "time/update_s": t3 - t2,
            "time/step_s": step_time,
            "time/reward_share": (t2 - t1) / step_time,
        })
        log.log(step, row)
        print(f"step {step}/{args.total_steps} reward {row['charts/reward_mean']:.4f} "
              f"ndcg@100 {row.get('metrics/ndcg@100', 0):.4f} valid "
              f"{row['charts/format_valid_rate']:.2f} terms {row['charts/query_terms']:.1f} "
              f"({step_time:.1f}s: gen {t1 - t0:.1f} reward {t2 - t1:.3f} update {t3 - t2:.1f})"
              f"\n  e.g. {obs[0][:60]!r} -> {rollout.texts[0][:80]!r} ({rewards[0]:.3f})",
              flush=True)

    # EVALUATION after training, checkpoint, plot
    train_s = time.time() - start
    results["trained"] = evaluate_llm(env, greedy, splits, args.eval_limit)
    print(write_eval(run_dir, results))
    if args.save_model:
        save_checkpoint(model, tokenizer, run_dir / "checkpoint", base_dir, {"algo": "grpo"})
    write_summary(run_dir, train_s, launched, invalid, guard)
    log.close(f"GRPO on {args.env_id} (seed {args.seed})")
    return run_dir


if __name__ == "__main__":
    main()
