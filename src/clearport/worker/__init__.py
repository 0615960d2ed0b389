"""Background jobs: relay, janitor, schedules."""
