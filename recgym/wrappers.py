"""Adapters that let classic RL agents (stable-baselines3, CleanRL, ...) play recgym unchanged.

* :class:`TermActions`: a discrete action picks up to ``max_terms`` words, which become the query.
  The words come from the request itself or from the training requests, never from the catalog,
  so the agent still has to learn which of the shopper's words the catalog responds to.
* :class:`HashedBagOfWords`: the text observation as a fixed-size vector (hashed word counts).

Example:
    >>> import gymnasium as gym, recgym
    >>> from recgym.wrappers import HashedBagOfWords, TermActions
    >>> env = gym.make("RecQuery-v0", world_kwargs={"n_items": 2000, "n_tasks": 300})
    >>> env = HashedBagOfWords(TermActions(env, vocabulary="train", size=64, max_terms=3), dim=256)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.action_space
    ((256,), MultiDiscrete([65 65 65]))
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> terminated and 0.0 <= reward <= 1.0
    True
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from recgym.catalog import choice_error
from recgym.policies import format_action
from recgym.text import ENGLISH_STOPWORDS

__all__ = ["VOCABULARIES", "HashedBagOfWords", "TermActions", "request_words"]

VOCABULARIES = ("request", "train")
_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")


def request_words(text: str) -> list[str]:
    """Lowercased words of ``text`` in order, without repeats and without stopwords."""
    words = [w for w in _WORD.findall(text.lower()) if w not in ENGLISH_STOPWORDS]
    return list(dict.fromkeys(words))


class TermActions(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """A query made of up to ``max_terms`` words chosen from a vocabulary the catalog did not give.

    Action space: ``MultiDiscrete([size + 1] * max_terms)``. Each entry picks a word: ``0`` means
    none, ``i`` the ``i``-th word of the vocabulary. The chosen words, without repeats and in
    order, are the query (wrapped in the answer format that the env's parser expects). Choosing
    no word is the env's ``empty_query`` step.

    Vocabularies:

    * ``"request"``: the current request's own words (stopwords dropped, first ``size`` of
      them); entries past the request's length choose nothing.
    * ``"train"``: the ``size`` most frequent words of the training split's requests (ties by
      alphabetical order). Fixed across episodes, so it pairs with :class:`HashedBagOfWords`.

    Args:
        env: a RecQuery env (one query per episode).
        vocabulary: ``"request"`` or ``"train"``.
        size: vocabulary size (``"train"``) or number of word slots (``"request"``).
        max_terms: words per query.
    """

    def __init__(self, env: gym.Env, vocabulary: str = "train", size: int = 256,
                 max_terms: int = 4):
        gym.utils.RecordConstructorArgs.__init__(
            self, vocabulary=vocabulary, size=size, max_terms=max_terms
        )
        gym.ActionWrapper.__init__(self, env)
        if vocabulary not in VOCABULARIES:
            raise choice_error("vocabulary", vocabulary, VOCABULARIES)
        for name, value in (("size", size), ("max_terms", max_terms)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        base = env.unwrapped
        self.mode, self.max_terms = vocabulary, max_terms
        self._parser = base.config.parser
        if vocabulary == "train":
            if "train" not in base.tasks.split_names:
                raise ValueError("vocabulary='train' needs a 'train' split; use 'request'")
            counts = Counter(
                w for r in base.tasks.split("train") for w in request_words(base.tasks[r].request)
            )
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            self.vocabulary = [w for w, _ in ranked[:size]]
        else:
            self.vocabulary = []
        self.size = size if vocabulary == "request" else len(self.vocabulary)
        self.action_space = spaces.MultiDiscrete([self.size + 1] * max_terms)

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        if self.mode == "request":
            self.vocabulary = request_words(info["task"]["request"])[: self.size]
        return obs, info

    def query(self, action: Any) -> str:
        """The query an action writes (before the answer format)."""
        picks = [int(a) - 1 for a in np.asarray(action).reshape(-1)]
        words = [self.vocabulary[i] for i in picks if 0 <= i < len(self.vocabulary)]
        return " ".join(dict.fromkeys(words))

    def action(self, action: Any) -> str:
        return format_action(self.query(action), self._parser)


class HashedBagOfWords(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """The text observation as a ``dim``-vector: word counts hashed into buckets.

    Words (:func:`request_words`, repeats counted) go to bucket ``blake2b(word) mod dim``, which
    does not change between processes (unlike ``hash()``); counts are ``log1p``-scaled and the
    vector L2-normalised, so the observation space is ``Box(0, 1, (dim,), float32)``.
    """

    def __init__(self, env: gym.Env, dim: int = 1024):
        gym.utils.RecordConstructorArgs.__init__(self, dim=dim)
        gym.ObservationWrapper.__init__(self, env)
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        self.dim = dim
        self.observation_space = spaces.Box(0.0, 1.0, (dim,), np.float32)
        self._bucket: dict[str, int] = {}

    def bucket(self, word: str) -> int:
        if word not in self._bucket:
            digest = hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8)
            self._bucket[word] = int.from_bytes(digest.digest(), "little") % self.dim
        return self._bucket[word]

    def observation(self, observation: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        words = [w for w in _WORD.findall(observation.lower()) if w not in ENGLISH_STOPWORDS]
        for word, count in Counter(words).items():
            vec[self.bucket(word)] += count
        np.log1p(vec, out=vec)
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm > 0 else vec
