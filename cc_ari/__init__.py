"""cc_ari: a contact-center backend for Asterisk, driven over ARI and AMI."""

__version__ = "0.1.0"
