"""A Lucca simulator: the v3 directory API, webhook events and their signed delivery.

See app.py for the HTTP API, control.py for the control API, company.py for the mutations,
lucca_api.py and endpoints.py for Lucca's webhook API (OAuth, endpoints, events, deliveries).
"""

from simulators.lucca.app import create_lucca_app
from simulators.lucca.clock import ManualClock
from simulators.lucca.company import Company, Registry
from simulators.lucca.generator import generate_company
from simulators.lucca.v3 import Department, LegalEntity, UnknownEntity
from simulators.lucca.webhooks import WebhookSender, sign

__all__ = [
    "Company",
    "Department",
    "LegalEntity",
    "ManualClock",
    "Registry",
    "UnknownEntity",
    "WebhookSender",
    "create_lucca_app",
    "generate_company",
    "sign",
]
