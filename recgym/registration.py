"""Registers one Gymnasium id per TOML spec in ``envs/`` (shipped as ``recgym.specs``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import gymnasium as gym

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["EnvSpecFile", "load_specs", "register_all"]

ENTRY_POINT = "recgym.env:RecQueryEnv"
VECTOR_ENTRY_POINT = "recgym.vector:RecQueryVectorEnv"


@dataclass(frozen=True)
class EnvSpecFile:
    """One registered id: its ``gym.make`` keyword arguments and a one-line summary."""

    id: str
    summary: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    max_episode_steps: int | None = None


def load_specs() -> list[EnvSpecFile]:
    """Every spec file, sorted by id."""
    specs = []
    for f in resources.files("recgym.specs").iterdir():
        if not f.name.endswith(".toml"):
            continue
        try:
            raw = tomllib.loads(f.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"env spec {f.name}: not valid TOML: {exc}") from None
        if raw.get("id") != f.name.removesuffix(".toml"):
            raise ValueError(
                f"env spec {f.name}: its id must equal the file name, got {raw.get('id')!r}"
            )
        specs.append(
            EnvSpecFile(
                raw["id"],
                raw.get("summary", ""),
                raw.get("kwargs", {}),
                raw.get("max_episode_steps"),
            )
        )
    return sorted(specs, key=lambda s: s.id)


def register_all() -> list[str]:
    """Register every spec with Gymnasium (idempotent); return the ids."""
    ids = []
    for spec in load_specs():
        if spec.id not in gym.registry:
            gym.register(
                id=spec.id,
                entry_point=ENTRY_POINT,
                vector_entry_point=VECTOR_ENTRY_POINT,
                kwargs=spec.kwargs,
                max_episode_steps=spec.max_episode_steps,
            )
        ids.append(spec.id)
    return ids
