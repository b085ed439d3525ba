"""Importers of historic odds into the warehouse, as change-only ticks through the validation and
write path the live feeds use: `football_data` (football-data.co.uk CSV), `oddsportal` (opening and
closing averages), `betfair` (Betfair Exchange stream files, read by `oddly.feeds.betfair_stream`
and written a file per run by `history.write_history`); `results` keeps match results for grading;
`cli` is `oddly import`."""
