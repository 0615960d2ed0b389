"""Settlement reports (detail CSV + Parquet + summary JSON)."""
