"""A long-lived marts worker for `oddly bench marts`: dbt kept warm in one process, as the Dagster
code server keeps it for the marts sensor, taking one command per line on stdin and answering one
JSON line on stdout.

Commands: `full` (every model rebuilt from scratch, as a deployment of new model code does), `cycle`
(one marts cycle exactly as the sensor runs it: `oddly.warehouse.cycle.run_marts_cycle`), `checks`
and `raw_history` (the data tests run apart from the cycle). The parent times the commands and
samples this process's memory, so what is measured is the platform's own code path.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from oddly.config import Settings
from oddly.matching.run import MatchState
from oddly.warehouse.cycle import run_marts_cycle
from oddly.warehouse.dbt_runner import DbtOutcome, WarmDbt
from oddly.warehouse.dbt_writer import held_for_dbt

COMMANDS = {
    "full": ["run", "--full-refresh"],
    "checks": ["test", "--selector", "checks"],
    "raw_history": ["test", "--selector", "raw_history"],
}
SLOWEST = 6


def slowest(outcome: DbtOutcome) -> dict[str, float]:
    return {n.unique_id.split(".")[-1]: round(n.seconds, 3) for n in outcome.slowest(SLOWEST)}


def handle(command: str, settings: Settings, dbt: WarmDbt, matching: MatchState) -> dict[str, Any]:
    t0 = time.perf_counter()
    if command == "cycle":
        cycle = run_marts_cycle(settings, dbt, run_checks=False, matching=matching)
        if not cycle.success:
            return {"ok": False, "error": cycle.describe()}
        return {
            "ok": True,
            "seconds": time.perf_counter() - t0,
            **cycle.timings(),
            "models": len(cycle.models.nodes),
            "matched": cycle.matching is not None,
            "slowest": slowest(cycle.models),
        }
    with held_for_dbt(settings) as held:
        outcome = dbt.invoke(COMMANDS[command])
        if command == "full" and outcome.success:
            dbt.mark_built()  # as a code server's first cycle would have, views included
            held.publish()
    if not outcome.success:
        return {"ok": False, "error": outcome.describe()}
    return {"ok": True, "seconds": time.perf_counter() - t0, "slowest": slowest(outcome)}


def main() -> None:
    settings = Settings(home=Path(sys.argv[1]), warehouse_url=None)
    dbt = WarmDbt(settings)
    dbt.prepare()
    matching = MatchState()
    print(json.dumps({"ok": True, "ready": True, "parses": dbt.parses}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if not command:
            continue
        try:
            answer = handle(command, settings, dbt, matching)
        except Exception as exc:  # the parent reports it and stops
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
