"""Call-control primitives over ARI shared by every flow (inbound, outbound, supervision)."""
