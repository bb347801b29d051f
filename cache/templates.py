"""The templates snapshot: the whole Templates table in one small document."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from cache.layout import Layout
from contacts.model import Template

MAX_TEMPLATES = 500
MAX_TEMPLATE_CHARS = 1_600


def templates_digest(templates: list[Template]) -> str:
    """A fingerprint of the templates, to skip rewriting them when nothing changed."""
    text = json.dumps([[t.category, t.text, t.whatsapp_approved] for t in templates])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class TemplateStore:
    """Reads and writes the cached templates."""

    def __init__(self, layout: Layout) -> None:
        self._layout = layout

    def get(self) -> list[Template] | None:
        """The cached templates in table order, or None before the first pull."""
        with self._layout.guard.calling("read the templates"):
            snapshot = self._layout.state("templates").get(**self._layout.guard.options())
        self._layout.meter.read()
        if not snapshot.exists:
            return None
        return [
            Template(t["category"], t["text"], bool(t.get("whatsapp_approved")))
            for t in (snapshot.to_dict() or {}).get("templates", [])
        ]

    def put(self, templates: list[Template], pulled_at: datetime) -> None:
        """Replace the cached templates."""
        data = {
            "pulled_at": pulled_at,
            "templates": [
                {
                    "category": t.category[:200],
                    "text": t.text,
                    "whatsapp_approved": t.whatsapp_approved,
                }
                # Cutting a longer one could split a merge field; no message is that long.
                for t in templates[:MAX_TEMPLATES]
                if len(t.text) <= MAX_TEMPLATE_CHARS
            ],
        }
        with self._layout.guard.calling("write the templates"):
            self._layout.state("templates").set(data, **self._layout.guard.options())
        self._layout.meter.wrote()
