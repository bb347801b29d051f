"""Generate a large made-up Frontline base (customers and templates) in the stand-in's data format.

    python -m demo.generate --customers 100000 --workers 1000 --seed 7 --out /tmp/base.json

The same seed always gives the same file. Phone numbers are unique per customer and drawn from
the US 555 exchange and the UK's 020 7946 0xxx drama range.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from standins.airtable.dates import format_iso
from standins.airtable.ids import seeded_id

BASE_ID = "appDemoFrontline1"
CUSTOMER_FIELDS = [
    "id",
    "name",
    "sms",
    "whatsapp",
    "email",
    "linkedin",
    "notes",
    "owner",
    "opt_out",
    "avatar",
]
TEMPLATE_FIELDS = ["category", "text", "whatsAppApproved"]

TEMPLATES: list[dict[str, Any]] = [
    {
        "category": "Openers",
        "text": "Hi {{first_name}}, this is {{owner}} from Owl Outfitters. "
        "Do you have a minute to talk about your order?",
        "whatsAppApproved": True,
    },
    {
        "category": "Openers",
        "text": "Hello {{name}}! Thanks for reaching out. How can I help you today?",
        "whatsAppApproved": True,
    },
    {
        "category": "Openers",
        "text": "Hi {{first_name}}, it's been a while! Anything I can help you with this week?",
    },
    {
        "category": "Follow-up",
        "text": "Hi {{first_name}}, just following up on our last conversation. "
        "Let me know if you have any questions.",
        "whatsAppApproved": True,
    },
    {
        "category": "Follow-up",
        "text": "Hi {{first_name}}, I've sent the details to {{email}}. "
        "Reply here if anything is unclear.",
    },
    {
        "category": "Follow-up",
        "text": "Quick reminder, {{first_name}}: your fitting is coming up. Reply YES to confirm.",
        "whatsAppApproved": True,
    },
    {
        "category": "Closing",
        "text": "Thanks for your time today, {{first_name}}. Have a great day!",
    },
    {
        "category": "Closing",
        "text": "It was a pleasure helping you, {{name}}. "
        "You can reach me here any time. {{owner}}",
    },
]

FIRST_NAMES = [
    "Ana", "Mariana", "Juan", "José", "Zoë", "Françoise", "Björn", "Chloé", "Siobhán", "Liam",
    "Noah", "Olivia", "Emma", "Amelia", "Mateo", "Lucía", "Sofía", "Camila", "Diego", "Renée",
    "Hélène", "Søren", "Åsa", "Łukasz", "Małgorzata", "Dvořák", "Mei", "Hiroshi", "Yuki", "Priya",
    "Arjun", "Aisha", "Omar", "Fatima", "Kwame", "Ngozi", "Chidi", "Thandiwe", "Giulia", "Marco",
    "Niamh", "Seán", "Eoin", "Aoife", "D'Andre", "Ja'Nya", "Grace", "Henry", "Isla", "Jack",
    "Kai", "Leila", "Maya", "Nora", "Oscar", "Pablo", "Quinn", "Rosa", "Sam", "Tomás",
    "Uma", "Valentina", "Wei", "Ximena", "Yara", "Zainab", "André", "Inés", "Raúl", "Begoña",
]  # fmt: skip
LAST_NAMES = [
    "Ruiz", "Li", "Anaya", "Álvarez", "Müller", "Dubois", "Åkesson", "Martin", "O'Brien", "Smith",
    "Johnson", "García", "Núñez", "Fernández", "López", "González", "Pérez", "Sánchez", "Gómez",
    "D'Angelo", "O'Connor", "McAllister", "Nguyen", "Tanaka", "Suzuki", "Kim", "Park", "Chen",
    "Wang", "Patel", "Sharma", "Okafor", "Mensah", "Adeyemi", "Haddad", "Khalil", "Rossi",
    "Bianchi", "Kowalski", "Nowak", "Novák", "Svensson", "Johansson", "Hansen", "Jensen",
    "Ó Súilleabháin", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Thomas", "Walsh",
    "Byrne", "Murphy", "Kelly", "Schmidt", "Schäfer", "Weiß", "Lefèvre", "Moreau", "Girard",
    "Costa", "Silva", "Santos", "Oliveira", "da Silva", "van der Berg", "de Jong", "Yılmaz",
]  # fmt: skip
NOTES = [
    "Prefers WhatsApp after 6pm.",
    "VIP: size 9 trail runners, restock alert.",
    "Asked about the loyalty programme.",
    "Returns handled by the Leeds store.",
    "Birthday in March; likes a heads-up on sales.",
    'Said "text me, don\'t call".',
    "Allergic to wool.\nOnly synthetic fabrics.",
    "Corporate account, invoices to accounts@example.com.",
    "Spanish speaker; happy in English too.",
    "Prefers e-mail for receipts.",
]
US_AREA_CODES = [
    "201", "202", "206", "212", "213", "214", "215", "303", "305", "310", "312", "313", "347",
    "404", "408", "412", "415", "503", "510", "512", "602", "617", "619", "646", "650", "702",
    "704", "713", "718", "720", "773", "786", "801", "813", "818", "832", "858", "917", "925",
    "949",
]  # fmt: skip
US_LINES = 9900  # 555-0100 … 555-9999 per area code
UK_LINES = 1000  # 020 7946 0000 … 0999
EPOCH = datetime(2023, 1, 2, 9, 0, tzinfo=UTC)
SPAN = timedelta(days=540)


def worker_identity(index: int) -> str:
    """The Frontline identity of worker ``index`` (1-based): rep0001@example.com."""
    return f"rep{index:04d}@example.com"


def _slug(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    ascii_only = decomposed.encode("ascii", "ignore").decode()
    return "-".join("".join(c if c.isalnum() else " " for c in ascii_only).split())


def _us_number(slot: int) -> tuple[str, str]:
    area = US_AREA_CODES[slot // US_LINES]
    line = 100 + slot % US_LINES
    return area, f"{line:04d}"


def _us_sms(area: str, line: str, rng: random.Random) -> str:
    style = rng.random()
    if style < 0.5:
        return f"+1{area}555{line}"
    if style < 0.65:
        return f"({area}) 555-{line}"
    if style < 0.75:
        return f"{area}.555.{line}"
    if style < 0.85:
        return f"{area}-555-{line}"
    if style < 0.93:
        return f"1 {area} 555 {line}"
    return f"+1 {area}-555-{line}"


def _owner_weights(workers: int, rng: random.Random) -> list[float]:
    # A few large books (thousands of contacts at 100k customers), the rest of similar size.
    large = max(1, workers // 200)
    heavy = (25.0, 75.0) if workers >= 200 else (5.0, 10.0)
    return [rng.uniform(*heavy) if i < large else rng.uniform(0.6, 1.4) for i in range(workers)]


def _avatar(slug: str, rng: random.Random) -> Any:
    if rng.random() < 0.05:
        url = f"https://example.com/avatars/{slug}.jpg"
        return [
            {
                "id": seeded_id("att", rng),
                "url": url,
                "filename": f"{slug}.jpg",
                "size": rng.randint(20_000, 90_000),
                "type": "image/jpeg",
                "thumbnails": {
                    "small": {"url": url + "?s=36", "width": 36, "height": 36},
                    "large": {"url": url + "?s=512", "width": 512, "height": 512},
                },
            }
        ]
    return f"https://example.com/avatars/{slug}.png"


def _customer(index: int, slot: int, owner: str, rng: random.Random) -> dict[str, Any]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    name = f"{first} {last}"
    slug = _slug(f"{first} {last} {index}")
    fields: dict[str, Any] = {}
    if rng.random() < 0.97:
        fields["id"] = f"C-{100_000 + index}"
    fields["name"] = name
    e164 = ""
    if slot >= len(US_AREA_CODES) * US_LINES:  # a UK customer
        line = f"{slot - len(US_AREA_CODES) * US_LINES:04d}"
        e164 = f"+44207946{line}"
        fields["sms"] = e164 if rng.random() < 0.5 else f"020 7946 {line}"
    elif rng.random() < 0.002:
        fields["sms"] = f"ext. {index}"  # not a phone number at all
    else:
        area, line = _us_number(slot)
        e164 = f"+1{area}555{line}"
        fields["sms"] = _us_sms(area, line, rng)
    if e164 and rng.random() < 0.3:
        fields["whatsapp"] = f"whatsapp:{e164}" if rng.random() < 0.5 else e164
    if rng.random() < 0.85:
        domain = rng.choice(("example.com", "example.org", "example.net"))
        fields["email"] = f"{slug.replace('-', '.')}@{domain}"
    if rng.random() < 0.3:
        fields["linkedin"] = f"https://www.linkedin.com/in/{slug}"
    if rng.random() < 0.4:
        fields["notes"] = rng.choice(NOTES)
    fields["owner"] = owner
    if rng.random() < 0.03:
        fields["opt_out"] = True
    if rng.random() < 0.1:
        fields["avatar"] = _avatar(slug, rng)
    return fields


def template_records(rng: random.Random) -> list[dict[str, Any]]:
    """The eight message templates as records."""
    return [
        {
            "id": seeded_id("rec", rng),
            "createdTime": format_iso(EPOCH + timedelta(minutes=i)),
            "fields": dict(template),
        }
        for i, template in enumerate(TEMPLATES)
    ]


def generate_base(
    customers: int = 100_000, workers: int = 1_000, seed: int = 7, base_id: str = BASE_ID
) -> dict[str, Any]:
    """A deterministic data file: ``customers`` contacts owned by ``workers`` reps."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    capacity = len(US_AREA_CODES) * US_LINES + UK_LINES
    if customers > capacity:
        raise ValueError(f"at most {capacity} customers have unique phone numbers")
    rng = random.Random(seed)
    identities = [worker_identity(i + 1) for i in range(workers)]
    owners = rng.choices(identities, weights=_owner_weights(workers, rng), k=customers)
    # About 1% of customers are in the UK; the rest spread over US area codes.
    uk = min(UK_LINES, customers // 100)
    us_slots = rng.sample(range(len(US_AREA_CODES) * US_LINES), customers - uk)
    uk_slots = [len(US_AREA_CODES) * US_LINES + i for i in rng.sample(range(UK_LINES), uk)]
    slots = us_slots + uk_slots
    rng.shuffle(slots)
    step = SPAN / max(customers, 1)
    seen: set[str] = set()
    records: list[dict[str, Any]] = []
    for index in range(customers):
        record_id = seeded_id("rec", rng)
        while record_id in seen:
            record_id = seeded_id("rec", rng)
        seen.add(record_id)
        records.append(
            {
                "id": record_id,
                "createdTime": format_iso(EPOCH + step * index),
                "fields": _customer(index, slots[index], owners[index], rng),
            }
        )
    return {
        "base_id": base_id,
        "schema": {"Customers": CUSTOMER_FIELDS, "Templates": TEMPLATE_FIELDS},
        "tables": {"Customers": records, "Templates": template_records(random.Random(seed))},
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: write a generated base as JSON."""
    parser = argparse.ArgumentParser(prog="python -m demo.generate", description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--base-id", default=BASE_ID)
    parser.add_argument("--out", default="-", help="output file ('-' for standard output)")
    args = parser.parse_args(argv)
    data = generate_base(args.customers, args.workers, args.seed, args.base_id)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    if args.out == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
