"""Models: the training runs of every model family side by side, the registered model's champion
and its history, and whether the live features have drifted from the champion's training data."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
import streamlit as st

from dashboards.common import app_db, explained, settings
from ml import views
from ml.tracking import Tracking

# Training runs and promotions change a few times a day; the drift check loads the model.
RUNS_TTL = 60
DRIFT_TTL = 300


@st.cache_data(ttl=RUNS_TTL, show_spinner=False)
def runs() -> pd.DataFrame:
    return views.runs(views.client(Tracking.from_settings(settings())))


@st.cache_data(ttl=RUNS_TTL, show_spinner=False)
def versions() -> pd.DataFrame:
    return views.versions(views.client(Tracking.from_settings(settings())))


@st.cache_data(ttl=DRIFT_TTL, show_spinner="Checking feature drift…")
def drift() -> views.DriftStatus:
    return views.drift(Tracking.from_settings(settings()), app_db())


@contextmanager
def mlflow_explained() -> Iterator[None]:
    """A missing or silent MLflow store is a sentence, like a missing warehouse."""
    try:
        with explained():
            yield
    except views.ModelsUnavailable as exc:
        st.info(str(exc))
    except Exception as exc:
        message = views.store_error(exc)
        if message is None:
            raise
        st.warning(f"The MLflow store did not answer ({message}). Is it running? Try again shortly.")


st.title("Models")

st.subheader("Champion")
with mlflow_explained():
    history = versions()
    champion = history[history["champion"]]
    if champion.empty:
        st.info(
            "No champion model yet: train one (`oddly train`, or the Dagster training job). Until "
            "then alerts come from the rule detectors only."
        )
    else:
        best = champion.iloc[0]
        left, middle, right = st.columns(3)
        left.metric("Champion version", int(best["version"]))
        middle.metric("Family", str(best["family"]))
        right.metric("Held-out PR-AUC", f"{best['heldout_pr_auc']:.3f}")
        st.caption(str(best["promotion"]))
    if not history.empty:
        st.markdown("**Version history** (every trained candidate, and why it was or was not promoted)")
        st.dataframe(
            history,
            hide_index=True,
            column_config={
                "version": "Version",
                "registered_at": st.column_config.DatetimeColumn(
                    "Registered (UTC)", format="YYYY-MM-DD HH:mm"
                ),
                "family": "Family",
                "champion": st.column_config.CheckboxColumn("Champion"),
                "heldout_pr_auc": st.column_config.NumberColumn("Held-out PR-AUC", format="%.3f"),
                "promotion": st.column_config.TextColumn("Promotion", width="large"),
                "run_id": "Run",
            },
        )

st.subheader("Training runs")
with mlflow_explained():
    found = runs()
    if found.empty:
        st.info("No training run yet: `oddly train` trains every family and logs each run here.")
    else:
        families = st.multiselect("Families", sorted(found["family"].unique()), key="run_families")
        shown = found[found["family"].isin(families)] if families else found
        st.caption("Held-out metrics, overall scope; time to detect is the median over the scenarios found.")
        st.dataframe(
            shown,
            hide_index=True,
            column_config={
                "started_at": st.column_config.DatetimeColumn("Started (UTC)", format="YYYY-MM-DD HH:mm"),
                "family": "Family",
                "pr_auc": st.column_config.NumberColumn("PR-AUC", format="%.3f"),
                "precision_at_k": st.column_config.NumberColumn("Precision@k", format="%.3f"),
                "recall_at_fpr": st.column_config.NumberColumn("Recall at FPR", format="%.3f"),
                "detected_share": st.column_config.NumberColumn("Scenarios found", format="percent"),
                "time_to_detect_s": st.column_config.NumberColumn("Time to detect (s)", format="%.0f"),
                "fit_seconds": st.column_config.NumberColumn("Fit (s)", format="%.1f"),
                "heldout_set": "Held-out set",
                "status": "Status",
                "run_id": "Run",
            },
        )

st.subheader("Feature drift")
with mlflow_explained():
    status = drift()
    if status.model_version is None or status.psi.empty:
        st.info(status.summary)
    else:
        (st.warning if status.drifted else st.success)(
            f"Champion version {status.model_version}, {status.rows:,} sampled rows of the last 24 h: "
            f"{status.summary}"
        )
        st.dataframe(
            status.psi,
            hide_index=True,
            column_config={
                "feature": "Feature",
                "psi": st.column_config.NumberColumn("PSI", format="%.3f"),
                "drifted": st.column_config.CheckboxColumn("Drifted (PSI > 0.2)"),
            },
        )
