"""Queueing and automatic call distribution, done by cc_ari itself over ARI."""
