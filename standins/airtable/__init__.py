"""A faithful local stand-in for Airtable's REST API, as pyairtable uses it."""

from standins.airtable.standin import AirtableStandIn
from standins.airtable.stats import Stats
from standins.airtable.store import Record, Table

__all__ = ["AirtableStandIn", "Record", "Stats", "Table"]
