"""Risk rules: block lists, amount limits, velocity and plug-in conditions, enforced or dry-run,
screened before a payment is routed."""
