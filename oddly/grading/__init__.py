"""Grading: every signal judged against what followed.

A signal is a bet someone could have placed when it fired: a detector's finding replayed over
the warehouse's history (`backtest`), an alert decided live (`live`), or the reference strategy
of Kaunitz, Zhong & Kreiner (`kaunitz`). Each is graded by its closing-line value against the sharp
book's no-vig closing price (`closing`) and, where the match result is known, settled at level
stakes (`settle`); `stats` sums a run up per type with bootstrap confidence intervals, `store`
keeps the graded bets and the summaries in the app database and `views` reads them for the app.

No Dagster, Streamlit or MLflow here: `ml.backtest` logs runs to MLflow, the Dagster asset and the
Streamlit page call into this package.
"""
