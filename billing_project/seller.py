"""The seller on invoices and e-invoices: read from the environment in settings.py, checked there at start.

EN 16931 needs the seller's legal name, postal address with its ISO 3166 country, VAT identifier and the account
to pay to (ledger/einvoice/ubl.py). This module imports nothing from Django's apps, so settings.py can use it.
"""

import os

from babel import Locale
from django_countries.data import COUNTRIES
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from stdnum import vatin
from stdnum.exceptions import ValidationError as NumberError

REQUIRED = ("name", "street", "city", "postal_code", "country", "vat_id", "email", "iban")


def seller_from_environment(default_email: str) -> dict[str, str]:
    env = os.environ.get
    seller = {
        "name": env("SELLER_NAME", "Countinghouse Services Ltd"),
        "trading_name": env("SELLER_TRADING_NAME", "Countinghouse"),
        "street": env("SELLER_STREET", "1 Ledger Lane"),
        "city": env("SELLER_CITY", "London"),
        "postal_code": env("SELLER_POSTAL_CODE", "EC1A 1AA"),
        "country": env("SELLER_COUNTRY", "GB").upper(),
        "vat_id": compact(env("SELLER_VAT_ID", env("SELLER_TAX_ID", "GB123456782"))),
        "registration_id": env("SELLER_REGISTRATION_ID", "01234567"),
        "email": env("SELLER_EMAIL", default_email),
        "iban": compact(env("SELLER_IBAN", "GB33BUKB20201555555555")),
        "bic": compact(env("SELLER_BIC", "BUKBGB22")),
        "peppol_scheme": env("SELLER_PEPPOL_SCHEME", "9932"),
        "peppol_id": env("SELLER_PEPPOL_ID", "GB123456782"),
    }
    # The PDF's blocks of text; given whole in the environment, or made of the parts above.
    seller["tax_id"] = seller["vat_id"]
    country_name = Locale("en").territories.get(seller["country"], "")
    seller["address"] = env(
        "SELLER_ADDRESS", f"{seller['street']}\n{seller['city']} {seller['postal_code']}\n{country_name}"
    )
    seller["bank"] = env("SELLER_BANK", f"IBAN {grouped(seller['iban'])}, BIC {seller['bic']}")
    return seller


def compact(value: str) -> str:
    return "".join(value.split()).upper()


def grouped(iban: str) -> str:
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def seller_problems(seller: dict[str, str]) -> list[str]:
    """What is missing or wrong in the seller's settings, each naming its environment variable."""
    problems = [f"SELLER_{key.upper()} is empty" for key in REQUIRED if not seller[key]]
    if seller["country"] and seller["country"] not in COUNTRIES:
        problems.append(f"SELLER_COUNTRY {seller['country']} is not an ISO 3166 country code")
    if seller["vat_id"]:
        try:
            vatin.validate(seller["vat_id"])
        except NumberError as error:
            problems.append(f"SELLER_VAT_ID {seller['vat_id']} is not a valid VAT identifier ({error})")
    try:
        if seller["iban"]:
            IBAN(seller["iban"])
        if seller["bic"]:
            BIC(seller["bic"])
    except SchwiftyException as error:
        problems.append(f"SELLER_IBAN or SELLER_BIC is not valid ({error})")
    if bool(seller["peppol_scheme"]) != bool(seller["peppol_id"]):
        problems.append("SELLER_PEPPOL_SCHEME and SELLER_PEPPOL_ID are set together or not at all")
    return problems
