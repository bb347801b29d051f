"""Demo and benchmark data for the Airtable stand-in."""
