"""The simulated processor behind both simulator hosts: its behaviour (processor.py) and its
own records (records.py)."""
