"""recgym: recommenders as Gymnasium environments.

The agent reads a request, writes a query string; the environment retrieves items from a catalog
the agent never sees; the reward is a ranking metric of what came back. ``import recgym`` registers
every environment id (``recgym list`` prints them).

Example:
    >>> import gymnasium as gym
    >>> import recgym
    >>> "RecQuery-v0" in gym.registry
    True
"""

from recgym.registration import register_all

__version__ = "0.1.0"
__all__ = ["ENV_IDS", "__version__"]

ENV_IDS: list[str] = register_all()
