"""What other apps need a customer to keep, asked without catalog importing them.

Imports point one way (accounts <- catalog <- usage <- ledger, DESIGN.md): an app that relies on a customer
keeping its CSM (the ledger, whose approval rule may name the CSM) registers a check when it starts
(`AppConfig.ready`), and the customer's validation asks every check before its CSM is taken away.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from catalog.models import Customer

# A check returns why the customer needs its CSM, as a sentence that says what to change first; None: it does not.
CsmRequirement = Callable[["Customer"], str | None]

_csm_requirements: list[CsmRequirement] = []


def register_csm_requirement(check: CsmRequirement) -> None:
    if check not in _csm_requirements:
        _csm_requirements.append(check)


def csm_requirements(customer: "Customer") -> list[str]:
    """Why `customer` needs a CSM, one reason per app that relies on it; empty when nothing does."""
    return [reason for check in _csm_requirements if (reason := check(customer))]
