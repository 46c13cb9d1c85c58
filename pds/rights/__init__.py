"""The owner's GDPR rights as services: requests to businesses (access, erasure, ...),
forgetting a business's data, exporting the vault, and the record of processing."""
