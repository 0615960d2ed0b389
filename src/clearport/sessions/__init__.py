"""Operator console sign-in: TOTP enrolment, server-side sessions, lockout per operator key."""
