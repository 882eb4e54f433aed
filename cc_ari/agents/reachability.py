"""Which agents' softphones are registered (reachable), from ARI endpoint states."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import structlog

log = structlog.get_logger("cc_ari.agents")


class Reachability:
    def __init__(self, agents: Iterable[str]) -> None:
        self._agents = frozenset(agents)
        self._online: dict[str, bool] = {}
        self.on_online: Callable[[], None] = lambda: None

    @property
    def agents(self) -> frozenset[str]:
        return self._agents

    def __call__(self, agent: str) -> bool:
        return self._online.get(agent, False)

    def states(self) -> dict[str, bool]:
        return dict(self._online)

    def reset(self, states: Mapping[str, str]) -> None:
        """After a (re)connection: resource -> ARI endpoint state, for our agents only."""
        self._online = {name: state == "online" for name, state in states.items() if name in self._agents}
        if any(self._online.values()):
            self.on_online()

    def update(self, agent: str, state: str) -> None:
        if agent not in self._agents:
            return
        online = state == "online"
        if self._online.get(agent) != online:
            self._online[agent] = online
            log.info("endpoint_state", endpoint=agent, online=online)
            if online:
                self.on_online()
