"""pds_client: a business's (and an auditor's) Python client for pds vaults.

``from pds_client import Client, Access`` for the OAuth flow and the records API
(:mod:`pds_client.client`); :func:`verify_webhook` (:mod:`pds_client.webhooks`);
:func:`verify_receipt` (:mod:`pds_client.receipts`); the standalone access-log verifier
:mod:`pds_client.verify` (also the ``pds-verify`` program). The names are loaded when first
used, so ``import pds_client.verify`` brings in neither authlib nor requests.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from pds_client.errors import (
    ApiError,
    AuthorizationError,
    DiscoveryError,
    OAuthError,
    PdsClientError,
    ReceiptError,
    VerifyError,
    WebhookError,
)

_LAZY = {
    "Access": "pds_client.models",
    "Aggregates": "pds_client.models",
    "AuthorizationRequest": "pds_client.models",
    "Change": "pds_client.models",
    "ChangesPage": "pds_client.models",
    "Client": "pds_client.client",
    "Page": "pds_client.models",
    "RecordChange": "pds_client.models",
    "Subscription": "pds_client.models",
    "Record": "pds_client.records",
    "Receipt": "pds_client.receipts",
    "verify_receipt": "pds_client.receipts",
    "verify_webhook": "pds_client.webhooks",
}

__all__ = [
    "ApiError",
    "AuthorizationError",
    "DiscoveryError",
    "OAuthError",
    "PdsClientError",
    "ReceiptError",
    "VerifyError",
    "WebhookError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pds_client' has no attribute {name!r}")
