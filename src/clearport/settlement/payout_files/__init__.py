"""Payout file writers: NACHA (USD), ISO 20022 pain.001 (EUR), CSV (other currencies).

Every writer is a pure function of its inputs (no clock, no randomness), so a re-run of a
settlement date writes byte-identical files.
"""

from __future__ import annotations

from clearport.settlement.payout_files.csv_file import render_csv
from clearport.settlement.payout_files.nacha import NachaOriginator, render_nacha
from clearport.settlement.payout_files.pain001 import SepaDebtor, render_pain001

__all__ = ["NachaOriginator", "SepaDebtor", "render_csv", "render_nacha", "render_pain001"]
