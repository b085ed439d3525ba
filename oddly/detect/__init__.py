"""Rule detectors: pure functions from fresh ticks or mart rows (plus the state they need) to
`Detection`s, one file each, with thresholds from a versioned rules file (`config/rules.yaml`).

| detector | reads | module |
|---|---|---|
| sharp drop | ticks with their previous price | `sharp_drop` |
| steam move | marts.fct_steam_moves | `steam` |
| one book out of line | prices: fresh ticks + state, or fct_prices_current | `out_of_line` |
| value against the sharp reference | marts.fct_value_bets | `value` |
| arbitrage | prices | `arbitrage` |
| stale line | prices (+ fct_bookmaker_quality) | `stale_line` |

`pipeline.detect_fresh` / `detect_ingested` run the fast ones inside an ingestion run;
`pipeline.detect_marts` runs them all on mart rows.
"""

from oddly.detect.arbitrage import detect_arbitrage
from oddly.detect.detection import (
    DETECTION_TYPES,
    Detection,
    DetectionInputError,
    detections_frame,
)
from oddly.detect.out_of_line import detect_out_of_line
from oddly.detect.rules import Rules, RulesError, load_rules, parse_rules
from oddly.detect.sharp_drop import detect_sharp_drops
from oddly.detect.stale_line import detect_stale_lines
from oddly.detect.steam import detect_steam
from oddly.detect.value import detect_value

__all__ = [
    "DETECTION_TYPES",
    "Detection",
    "DetectionInputError",
    "Rules",
    "RulesError",
    "detect_arbitrage",
    "detect_out_of_line",
    "detect_sharp_drops",
    "detect_stale_lines",
    "detect_steam",
    "detect_value",
    "detections_frame",
    "load_rules",
    "parse_rules",
]
