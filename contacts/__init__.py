"""The contact domain: customers, templates, phone numbers, search, and Frontline's wire format."""
