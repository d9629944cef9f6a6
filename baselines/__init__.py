"""Reference agents for recgym (GRPO, PPO, stable-baselines3 PPO); not imported by ``recgym``.

Run them as modules from the repository root, e.g. ``python -m baselines.grpo --help``.
See docs/baselines.md.
"""
