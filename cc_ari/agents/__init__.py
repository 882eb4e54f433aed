"""Agents: who is logged in to which queues, and in which state."""
