"""The seeded workload: what reps do, which messages arrive, and which contacts change, and when.

Both contenders get exactly the same plan. Actions arrive as a Poisson process whose rate is
chosen so that callbacks (not actions) arrive at `rate` per second on average.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bench.dataset import Book, Contact

# Action kind → (weight, callbacks it makes).
ACTIONS: dict[str, tuple[float, int]] = {
    "open_list": (0.25, 3),  # first page and two more pages
    "search": (0.20, 1),
    "details": (0.25, 1),
    "templates": (0.15, 1),
    # onConversationAdd, routing, then onParticipantAdded for the customer participant
    "inbound_known": (0.10, 3),
    "inbound_unknown": (0.05, 3),
}
CHANGE_KINDS = ("edit", "reassign", "delete")
# Changes happen in this share of the workload, so there is time to see them.
CHANGES_WITHIN = 0.4


@dataclass(frozen=True)
class Action:
    """One thing a rep (or a customer) does at `at` seconds into the run."""

    at: float
    kind: str
    worker: str
    contact: Contact | None = None
    query: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class Change:
    """One edit made in Airtable's UI during the run."""

    at: float
    kind: str  # edit, reassign, delete
    contact: Contact
    new_owner: str | None = None
    new_name: str | None = None


@dataclass(frozen=True)
class Plan:
    """The whole workload."""

    actions: list[Action]
    changes: list[Change]

    @property
    def callbacks(self) -> int:
        return sum(ACTIONS[a.kind][1] for a in self.actions)


def make_plan(book: Book, reps: int, duration: float, rate: float, changes: int, seed: int) -> Plan:
    """The seeded plan of actions and changes."""
    rng = random.Random(seed)
    active = sorted(rng.sample(book.workers, min(reps, len(book.workers))))
    kinds = list(ACTIONS)
    weights = [ACTIONS[k][0] for k in kinds]
    mean_calls = sum(w * ACTIONS[k][1] for k, w in zip(kinds, weights, strict=True)) / sum(weights)
    action_rate = rate / mean_calls
    changed = _changes(book, active, duration, changes, rng)
    untouchable = {c.contact.record_id for c in changed}
    actions: list[Action] = []
    at = rng.expovariate(action_rate)
    while at < duration:
        kind = rng.choices(kinds, weights)[0]
        actions.append(_action(book, active, kind, at, untouchable, rng))
        at += rng.expovariate(action_rate)
    return Plan(actions, changed)


def _action(
    book: Book, active: list[str], kind: str, at: float, untouchable: set[str], rng: random.Random
) -> Action:
    worker = rng.choice(active)
    own = [c for c in book.by_owner[worker] if c.record_id not in untouchable]
    contact = rng.choice(own)
    if kind == "search":
        word = rng.choice(contact.name.split() or [contact.name])
        return Action(at, kind, worker, query=word[: max(3, len(word) - 1)])
    if kind in ("details", "templates"):
        return Action(at, kind, worker, contact=contact)
    if kind == "inbound_known":
        known = [c for c in own if c.e164] or [contact]
        target = rng.choice(known)
        return Action(at, kind, target.owner, contact=target, address=target.e164)
    if kind == "inbound_unknown":
        return Action(at, kind, worker, address=f"+1999555{rng.randrange(10_000):04d}")
    return Action(at, kind, worker)


def _changes(
    book: Book, active: list[str], duration: float, count: int, rng: random.Random
) -> list[Change]:
    if count <= 0:
        return []
    total = count * len(CHANGE_KINDS)
    step = duration * CHANGES_WITHIN / total
    chosen: set[str] = set()
    changes: list[Change] = []
    for index in range(total):
        kind = CHANGE_KINDS[index % len(CHANGE_KINDS)]
        owner = rng.choice(active)
        contact = rng.choice([c for c in book.by_owner[owner] if c.record_id not in chosen])
        chosen.add(contact.record_id)
        at = step * (index + 0.5)
        if kind == "edit":
            changes.append(Change(at, kind, contact, new_name=f"Renamed Probe{index:02d}"))
        elif kind == "reassign":
            new_owner = rng.choice([w for w in active if w != owner] or [owner])
            changes.append(Change(at, kind, contact, new_owner=new_owner))
        else:
            changes.append(Change(at, kind, contact))
    return changes
