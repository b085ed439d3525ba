"""Feed agents are found through the `oddly.feeds` entry-point group, ours and third parties' alike."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from oddly.feeds.base import FeedAgent

GROUP = "oddly.feeds"


class UnknownAgentError(LookupError):
    pass


@cache
def available_agents() -> dict[str, type[FeedAgent]]:
    """Agent name → class, for every installed `oddly.feeds` entry point."""
    agents: dict[str, type[FeedAgent]] = {}
    for ep in entry_points(group=GROUP):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, FeedAgent)):
            raise TypeError(
                f"entry point {ep.name} = {ep.value} in group {GROUP} is not a FeedAgent subclass"
            )
        agents[ep.name] = cls
    return agents


def agent_class(name: str) -> type[FeedAgent]:
    agents = available_agents()
    if name not in agents:
        known = ", ".join(sorted(agents)) or "none (is the package installed? run `make install`)"
        raise UnknownAgentError(f"no feed agent named {name!r}; installed agents: {known}")
    return agents[name]
