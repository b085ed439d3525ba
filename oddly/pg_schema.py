"""One PostgreSQL for every store (`ODDLY_DATABASE_URL`): each store in its own schema of the same
database, chosen by the connection's search path (`?options=-csearch_path%3D<schema>`), which
SQLAlchemy, dagster-postgres and MLflow all pass on to libpq.

`in_schema` builds a store's URL from the database's; `ensure_schema` creates the schema a URL
names before a store creates its tables in it (they would otherwise have nowhere to go).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

_SEARCH_PATH = re.compile(r"-c\s*search_path=([A-Za-z_][A-Za-z0-9_]*)")


def in_schema(url: str, schema: str) -> str:
    """`url` with its connections' search path set to `schema` (other query parameters kept)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "options"]
    options = " ".join(
        o for k, v in parse_qsl(parts.query) if k == "options" for o in [_SEARCH_PATH.sub("", v).strip()] if o
    )
    query.append(("options", f"{options} -csearch_path={schema}".strip()))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def schema_of(url: str) -> str | None:
    """The schema a URL's search path names, if it names one."""
    for key, value in parse_qsl(urlsplit(url).query):
        if key == "options":
            found = _SEARCH_PATH.search(unquote(value))
            if found:
                return found.group(1)
    return None


def ensure_schema(url: str) -> None:
    """Create the schema `url`'s search path names (nothing for other URLs or when it exists)."""
    schema = schema_of(url)
    if schema is None or not url.startswith(("postgresql", "postgres:")):
        return
    import psycopg

    parts = urlsplit(url)
    plain = urlunsplit(("postgresql", parts.netloc, parts.path, "", ""))
    with psycopg.connect(plain, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'create schema if not exists "{schema}"')
