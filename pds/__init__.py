"""pds: a self-hosted personal data store."""

__version__ = "0.1.0"
