"""`oddly status`: the platform's health in one screen — the feeds and the outbox
(`oddly.status`) and the champion model with its feature drift (here, as `oddly/` does not import
`ml`). Exits 1 when something needs attention, so a cron job or a probe can act on it."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from oddly.appdb import open_app_db
from oddly.config import get_settings
from oddly.model import now_utc
from oddly.status import platform_status


def model_status() -> dict[str, Any]:
    """The champion's version and its drift over the last 24 h, or why they are unknown."""
    from ml.tracking import Tracking
    from ml.views import ModelsUnavailable, drift

    settings = get_settings()
    engine = open_app_db(settings)
    try:
        status = drift(Tracking.from_settings(settings), engine)
    except ModelsUnavailable as exc:  # an embedded store not created yet: no model, and what to do
        return {"champion": "none", "drift": str(exc), "drifted": False}
    except Exception as exc:  # a store that is down: say so, the rest still shows
        return {"champion": "unknown", "error": f"model store unreadable ({type(exc).__name__}: {exc})"}
    finally:
        engine.dispose()
    drifted = status.psi.loc[status.psi["drifted"], "feature"].tolist() if status.drifted else []
    return {
        "champion": status.model_version or "none",
        "drift": ("drifted: " + ", ".join(drifted)) if drifted else status.summary,
        "drifted": status.drifted,
        "rows_compared": status.rows,
    }


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@click.option("--no-model", is_flag=True, help="Skip the model part (it loads the champion).")
def status(as_json: bool, no_model: bool) -> None:
    """Feeds (last success, freshness, last error, quarantined rows), the outbox (backlog, oldest
    undelivered alert), the champion model and its drift. Exits 1 when something needs attention."""
    report = platform_status(get_settings(), now_utc())
    if not no_model:
        report.model = model_status()
    click.echo(json.dumps(report.as_dict()) if as_json else report.render())
    sys.exit(0 if report.healthy else 1)
