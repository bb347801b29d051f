"""What every request of the service relies on: settings, secrets, errors, logs, signatures."""
