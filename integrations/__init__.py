"""The outside systems: Airtable (the contact source) and Twilio's Conversations API."""
