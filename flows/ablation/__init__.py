"""`selfalign ablate`: variants of the curated set trained on equal tokens and measured side by
side (ablate.py), the variants' rows (data.py), the table (report.py) and its chart (chart.py)."""
