"""PPO for a causal LM that writes queries for recgym, with a value head and token-level GAE.

Each step samples one completion per training request (``samples_per_prompt``), scores them with
ONE ``env.unwrapped.score`` call, and turns each into per-token rewards: minus ``kl_coef`` times
the log-ratio to the frozen starting model at every token, plus the ranking reward at the last
token. A value head (a linear layer on the LM's final hidden states) gives per-token values;
GAE gives advantages and returns; the policy and value losses are both clipped. The critic
reads the policy's hidden states detached by default, so the value loss cannot disturb the
policy (``--critic-grad-to-lm`` makes it a shared trunk). Docs: docs/baselines.md.

    python -m baselines.ppo --help
    python -m baselines.ppo --seed 1 --torch-threads 1       # the quick CPU configuration
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

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

VALUE_HEAD_FILE = "value_head.pt"


@dataclass
class Args(CommonArgs):
    prompts_per_step: int = 12
    """training requests per step"""
    micro_batch_size: int = 12
    """completions per forward/backward pass; gradients accumulate over a minibatch"""
    samples_per_prompt: int = 1
    """completions per request (PPO needs no group; the value head is the baseline)"""
    ppo_epochs: int = 2
    """optimisation passes over each batch"""
    minibatch_size: int = 12
    """completions per optimiser step (split into micro-batches for the forward passes)"""
    clip_eps: float = 0.2
    """clipping range of the policy ratio"""
    vf_clip: float = 0.2
    """clipping range of the value update around the rollout's values"""
    vf_coef: float = 0.5
    """weight of the value loss"""
    gamma: float = 1.0
    """discount over tokens"""
    gae_lambda: float = 0.95
    """GAE lambda"""
    kl_coef: float = 0.05
    """per-token KL penalty to the frozen starting model, in the reward"""
    value_learning_rate: float = 1e-3
    """AdamW learning rate of the value head"""
    critic_grad_to_lm: bool = False
    """let the value loss also train the LM's trainable layers (shared trunk)"""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.samples_per_prompt < 1 or self.ppo_epochs < 1 or self.minibatch_size < 1:
            raise ValueError("samples_per_prompt, ppo_epochs and minibatch_size must be >= 1")
        if not (0 <= self.gamma <= 1 and 0 <= self.gae_lambda <= 1):
            raise ValueError("gamma and gae_lambda must be in [0, 1]")


# ALGO LOGIC: rewards, GAE, losses
def token_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor,
                  kl_coef: float) -> torch.Tensor:
    """``-kl_coef * kl`` at every completion token, plus the score at each sequence's last."""
    rewards = -kl_coef * kl * mask
    last = (mask.sum(1).long() - 1).clamp(min=0)
    rewards[torch.arange(len(scores)), last] += scores
    return rewards


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float,
        lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates and returns over the tokens of each completion."""
    values = values * mask
    adv = torch.zeros_like(rewards)
    last = torch.zeros(len(rewards), device=rewards.device)
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = (delta + gamma * lam * last) * mask[:, t]
        adv[:, t] = last
    return adv, adv + values


def whiten(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mean = (x * mask).sum() / mask.sum()
    var = (((x - mean) ** 2) * mask).sum() / mask.sum()
    return (x - mean) * torch.rsqrt(var + 1e-8) * mask


def value_loss(v: torch.Tensor, old_v: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               clip: float) -> torch.Tensor:
    """Clipped value loss, 0.5 * max of the two squared errors, summed over masked tokens."""
    v_clipped = old_v + torch.clamp(v - old_v, -clip, clip)
    err = torch.max((v - returns) ** 2, (v_clipped - returns) ** 2)
    return 0.5 * (err * mask).sum()


class ValueHead(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.linear = nn.Linear(hidden, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(h.float()).squeeze(-1)


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
    critic = ValueHead(model.config.hidden_size).to(device)
    head_file = Path(args.model) / VALUE_HEAD_FILE
    if head_file.exists():  # resuming from a PPO checkpoint
        critic.load_state_dict(torch.load(head_file, map_location=device))
    ref_model = frozen_reference(model, args.kl_coef)
    prompter = Prompter(tokenizer, system_message(args.system_prompt, env),
                        context_length(model), args.max_new_tokens)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": trainable, "lr": args.learning_rate},
         {"params": critic.parameters(), "lr": args.value_learning_rate}], weight_decay=0.0)
    run_dir = start_run(args, "ppo")
    log = RunLog(run_dir, args)
    print(f"run {run_dir}: {sum(p.numel() for p in trainable):,} trainable parameters on {device}")

    # EVALUATION before training
    splits = args.eval_splits.split(",")
    greedy = llm_policy(model, tokenizer, prompter, args.eval_batch_size, args.max_new_tokens)
    results = evaluate_references(env, splits, args.eval_limit)
    if args.eval_before:
        results["untrained"] = evaluate_llm(env, greedy, splits, args.eval_limit)

    def forward(rows: slice | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logp, entropy, h = completion_forward(model, rollout, rows, args.temperature, hidden=True)
        return logp, entropy, critic(h if args.critic_grad_to_lm else h.detach())

    # TRAINING LOOP
    tasks, guard, invalid = TaskStream(env, args.train_limit, rng), FiniteGuard(), {}
    start = time.time()
    for step in range(1, args.total_steps + 1):
        t0 = time.time()
        rows = np.repeat(tasks.take(args.prompts_per_step), args.samples_per_prompt)
        obs = [base.render_prompt(base.tasks[r].request) for r in rows]
        rollout = generate(model, tokenizer, prompter.encode(obs, device), args.max_new_tokens,
                           args.temperature)
        t1 = time.time()
        scores, infos = base.score(rows.tolist(), rollout.texts)  # one batched retrieval
        t2 = time.time()
        mask = rollout.mask.float()
        micro = [slice(i, i + args.micro_batch_size)
                 for i in range(0, len(rollout), args.micro_batch_size)]
        with torch.no_grad():
            old_logp, entropy, old_v = (torch.cat(x) for x in zip(*(forward(mb) for mb in micro)))
            kl = torch.zeros_like(old_logp)
            if args.kl_coef > 0:
                ref_logp = torch.cat([
                    reference_logp(model, ref_model, rollout, mb, args.temperature)
                    for mb in micro])
                kl = (old_logp - ref_logp) * mask
            rewards = token_rewards(torch.tensor(scores, dtype=torch.float32, device=device),
                                    kl, mask, args.kl_coef)
            adv, returns = gae(rewards, old_v, mask, args.gamma, args.gae_lambda)
            adv = whiten(adv, mask)
        t_rollout = time.time()

        stats = {"pg": 0.0, "vf": 0.0, "clipped": 0.0, "n": 0.0}
        for _ in range(args.ppo_epochs):
            order = torch.randperm(len(rollout), device=device)
            for mb_start in range(0, len(rollout), args.minibatch_size):
                mb = order[mb_start : mb_start + args.minibatch_size]
                n_tok = max(float(mask[mb].sum()), 1.0)
                for i in range(0, len(mb), args.micro_batch_size):
                    idx = mb[i : i + args.micro_batch_size]
                    logp, _, v = forward(idx)
                    pg, n_clipped = clipped_surrogate(logp, old_logp[idx], adv[idx], mask[idx],
                                                      args.clip_eps)
                    vf = value_loss(v, old_v[idx], returns[idx], mask[idx], args.vf_clip)
                    loss = (pg + args.vf_coef * vf) / n_tok
                    guard.check(step, loss=loss.item())
                    loss.backward()
                    stats["pg"] += pg.item()
                    stats["vf"] += vf.item()
                    stats["clipped"] += float(n_clipped)
                    stats["n"] += float(mask[idx].sum())
                grad_norm = float(torch.nn.utils.clip_grad_norm_(
                    [*trainable, *critic.parameters()], args.max_grad_norm))
                guard.check(step, grad_norm=grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        t3 = time.time()

        # LOGGING
        n_tokens = max(float(mask.sum()), 1.0)
        flat_ret, flat_v = returns[mask > 0], old_v[mask > 0]
        explained = 1 - float(torch.var(flat_ret - flat_v) / (torch.var(flat_ret) + 1e-8))
        row = reward_stats(scores, infos, rollout, invalid)
        step_time = t3 - t0
        row.update({
            "charts/kl": float(kl.sum()) / n_tokens,
            "charts/entropy": float((entropy * mask).sum()) / n_tokens,
            "charts/tokens_per_s": n_tokens / max(t1 - t0, 1e-9),
            "charts/prompts_seen": step * args.prompts_per_step,
            "losses/policy": stats["pg"] / max(stats["n"], 1.0),
            "losses/value": stats["vf"] / max(stats["n"], 1.0),
            "losses/clip_frac": stats["clipped"] / max(stats["n"], 1.0),
            "losses/explained_variance": explained,
            "losses/grad_norm": grad_norm,
            "time/generate_s": t1 - t0,
            "time/reward_s": t2 - t1,
            "time/update_s": t3 - t2,
            "time/rollout_forward_s": t_rollout - t2,
            "time/step_s": step_time,
            "time/reward_share": (t2 - t1) / step_time,
        })
        log.log(step, row)
        print(f"step {step}/{args.total_steps} reward {row['charts/reward_mean']:.4f} "
              f"valid {row['charts/format_valid_rate']:.2f} terms {row['charts/query_terms']:.1f} "
              f"kl {row['charts/kl']:.4f} ev {explained:.2f} ({step_time:.1f}s: gen "
              f"{t1 - t0:.1f} reward {t2 - t1:.3f} update {t3 - t2:.1f})", flush=True)

    # EVALUATION after training, checkpoint, plot
    train_s = time.time() - start
    results["trained"] = evaluate_llm(env, greedy, splits, args.eval_limit)
    print(write_eval(run_dir, results))
    if args.save_model:
        out = save_checkpoint(model, tokenizer, run_dir / "checkpoint", base_dir, {"algo": "ppo"})
        torch.save(critic.state_dict(), out / VALUE_HEAD_FILE)
    write_summary(run_dir, train_s, launched, invalid, guard)
    log.close(f"PPO on {args.env_id} (seed {args.seed})")
    return run_dir


if __name__ == "__main__":
    main()
