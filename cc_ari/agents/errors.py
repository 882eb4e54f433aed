"""Agent errors, typed by cause; the HTTP layer maps them to status codes."""

from __future__ import annotations


class AgentError(Exception):
    """Base class."""


class UnknownAgent(AgentError):
    def __init__(self, agent: str) -> None:
        super().__init__(f"unknown agent {agent!r}")
        self.agent = agent


class UnknownQueue(AgentError):
    def __init__(self, queues: list[str]) -> None:
        super().__init__(f"unknown queue(s): {', '.join(sorted(queues))}")
        self.queues = queues


class InvalidTransition(AgentError):
    """The request does not fit the agent's state (e.g. pause while logged out)."""
