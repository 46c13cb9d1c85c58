"""Connectors: one module per source format. Each turns a file into a stream of Records.

Connectors know file formats and nothing about storage. pds finds them through the
``pds.connectors`` entry-point group (its own register the same way an outside package
would), so pds's code reaches them only through ``pds.registry``.
"""
