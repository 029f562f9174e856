"""Write a realistic usage CSV for the demo catalog (`manage.py seed_demo`).

Usage: .venv/bin/python bench/generate_usage.py OUT.csv [--rows 1000000] [--month 2026-10] [--seed 42]
                                                [--event-ids]

The catalog is the demo one: the 12 customers ACME-001 … MASSIVE-012 and the 6 services kyc_basic,
kyc_enhanced, aml_screening, aml_monitoring, api_call and doc_verification, all with agreements in
force from 2026-01-01, so every row of the file is valid for any month of 2026. Customers are drawn
with a long-tail weight (the first is about six times as busy as the last), services with a mix a
KYC/AML reseller sees (screening and API calls most, enhanced checks least), quantities per service
(one for a check, hundreds to thousands for API calls and monitoring days). Service times are spread
over the whole month, in time order, written as `2026-10-03T10:00:00Z`; with `--event-ids` a unique
`eventId` column comes first. The same seed writes the same file, byte for byte.
"""

import argparse
import calendar
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

CLIENT_IDS = [
    "ACME-001",
    "NORTHWIND-002",
    "GLOBEX-003",
    "INITECH-004",
    "UMBRELLA-005",
    "STARK-006",
    "WAYNE-007",
    "TYRELL-008",
    "CYBERDYNE-009",
    "SOYLENT-010",
    "HOOLI-011",
    "MASSIVE-012",
]
# service code: share of rows, quantity drawer
SERVICES = {
    "kyc_basic": (0.22, lambda rnd: 1 if rnd.random() < 0.9 else rnd.randint(2, 5)),
    "kyc_enhanced": (0.05, lambda rnd: 1),
    "aml_screening": (0.28, lambda rnd: 1 if rnd.random() < 0.7 else rnd.randint(2, 20)),
    "aml_monitoring": (0.10, lambda rnd: rnd.randint(50, 5000)),
    "api_call": (0.25, lambda rnd: rnd.randint(1, 2000)),
    "doc_verification": (0.10, lambda rnd: rnd.randint(1, 3)),
}


def generate(out, *, rows: int, month: str, seed: int, event_ids: bool) -> None:
    rnd = random.Random(seed)
    year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=UTC)
    seconds = calendar.monthrange(year, number)[1] * 86400
    codes = list(SERVICES)
    service_weights = [share for share, _ in SERVICES.values()]
    drawers = [drawer for _, drawer in SERVICES.values()]
    client_weights = [1 / (1 + index / 2.2) for index in range(len(CLIENT_IDS))]
    # Sorted offsets: an export in time order, as a provider's billing system writes it.
    offsets = sorted(rnd.randrange(seconds) for _ in range(rows))
    services = rnd.choices(range(len(codes)), weights=service_weights, k=rows)
    clients = rnd.choices(CLIENT_IDS, weights=client_weights, k=rows)
    header = "serviceName,clientId,quantity,serviceTime\n"
    out.write(f"eventId,{header}" if event_ids else header)
    last_offset, stamp = None, ""
    lines = []
    for index in range(rows):
        offset = offsets[index]
        if offset != last_offset:  # offsets are sorted: format each second once
            last_offset, stamp = offset, (start + timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%SZ")
        service = services[index]
        line = f"{codes[service]},{clients[index]},{drawers[service](rnd)},{stamp}\n"
        lines.append(f"evt-{seed}-{index:08d},{line}" if event_ids else line)
        if len(lines) >= 10000:
            out.write("".join(lines))
            lines.clear()
    out.write("".join(lines))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="CSV file to write ('-' for standard output)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--month", default="2026-10", help="billing month of the service times, YYYY-MM (UTC)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--event-ids", action="store_true", help="add a unique eventId column")
    args = parser.parse_args(argv)
    options = {"rows": args.rows, "month": args.month, "seed": args.seed, "event_ids": args.event_ids}
    if str(args.output) == "-":
        generate(sys.stdout, **options)
        return
    with args.output.open("w", encoding="utf-8", newline="") as out:
        generate(out, **options)


if __name__ == "__main__":
    main()
