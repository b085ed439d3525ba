"""Team names reduced to a form two bookmakers agree on: ASCII, lower case, no punctuation, no
club affixes, common abbreviations spelled out."""

from __future__ import annotations

import re
from functools import lru_cache

from anyascii import anyascii

# Tokens that say "club" rather than which club ("FC Barcelona" = "Barcelona"). Kept short on
# purpose: "real", "sporting", "athletic", "inter" tell clubs apart and stay.
AFFIXES = frozenset(
    {
        "fc",
        "cf",
        "afc",
        "sc",
        "ac",
        "as",
        "cd",
        "ud",
        "sd",
        "ssc",
        "fk",
        "pfk",
        "sk",
        "bk",
        "if",
        "ik",
        "club",
        "calcio",
        "bv",
        "vfb",
        "vfl",
        "tsg",
        "sv",
        "ca",
        "cp",
        "sl",
        "the",
        "de",
        "futbol",
        "football",
    }
)
# Abbreviations written out (first: only as the first token, where they mean a city or a prefix).
EXPAND = {
    "utd": "united",
    "st": "saint",
    "ste": "sainte",
    "atl": "atletico",
    "ath": "athletic",
    "dep": "deportivo",
}
EXPAND_FIRST = {"man": "manchester", "b": "borussia", "r": "real", "e": "eintracht"}
_PUNCTUATION = re.compile(r"[^a-z0-9 ]+")


@lru_cache(maxsize=65536)
def normalize_team(name: str) -> str:
    """ "1. FC Köln" → "koln"; "Man Utd" → "manchester united"; "İmişli" → "imisli"."""
    text = anyascii(name).lower().replace("&", " and ")
    # dotted initials and apostrophes close up ("A.C." → "ac", "Nott'm" → "nottm")
    text = _PUNCTUATION.sub(" ", text.replace(".", "").replace("'", ""))
    tokens = text.split()
    out = []
    for i, token in enumerate(tokens):
        token = EXPAND_FIRST.get(token, token) if i == 0 else token
        token = EXPAND.get(token, token)
        if token in AFFIXES or token.isdigit():
            continue
        out.append(token)
    # "Sporting CP" keeps "sporting"; a name made only of affixes keeps its own words.
    return " ".join(out) or " ".join(tokens)
