"""Importers of historic odds files into the warehouse, as ticks and event-map rows, through the same
`Warehouse.write_run` path the live feeds use (`football_data`: football-data.co.uk CSV files)."""
