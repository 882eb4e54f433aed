"""Outbound dialing: pacing policies (pure) and the simulator that compares them."""
