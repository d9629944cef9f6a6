"""Text spaces: any Python string within length bounds.

Gymnasium's :class:`~gymnasium.spaces.Text` only contains strings over a fixed charset (by default
alphanumerics without a space), which rejects every real query. :class:`AnyText` accepts any ``str``
whose length is within bounds (unicode, spaces, punctuation included) and samples printable text.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np
from gymnasium import spaces

__all__ = ["AnyText"]

# What sample() draws from: printable ASCII plus a few non-ASCII letters, so that sampled
# actions exercise unicode handling without producing unprintable characters.
_SAMPLE_CHARSET = string.ascii_letters + string.digits + string.punctuation + " " * 8 + "éüñßçøå"


class AnyText(spaces.Text):
    """Any ``str`` of ``min_length`` to ``max_length`` characters.

    Example:
        >>> space = AnyText(max_length=64, seed=0)
        >>> space.contains("insulated travel mug, 16 oz ☕")
        True
        >>> space.contains(b"bytes")
        False
        >>> space.sample() == AnyText(max_length=64, seed=0).sample()
        True
    """

    def __init__(self, max_length: int, *, min_length: int = 0, seed: int | None = None) -> None:
        super().__init__(max_length, min_length=min_length, charset=_SAMPLE_CHARSET, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        if mask is not None or probability is not None:
            return super().sample(mask=mask, probability=probability)
        # Short texts are what agents write; sample lengths uniformly up to 64 characters.
        high = min(self.max_length, max(self.min_length, 64))
        length = int(self.np_random.integers(self.min_length, high + 1))
        chars = np.asarray(list(_SAMPLE_CHARSET))
        return "".join(self.np_random.choice(chars, size=length))

    def __repr__(self) -> str:
        return f"AnyText({self.min_length}, {self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, AnyText)
            and self.min_length == other.min_length
            and self.max_length == other.max_length
        )
