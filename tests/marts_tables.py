"""Reading whole dbt relations into pandas and comparing them, for tests across builds/warehouses."""

from __future__ import annotations

import pandas as pd

from oddly.warehouse.store import Warehouse


def relations(warehouse: Warehouse, schema: str) -> list[str]:
    """Tables and views dbt built in `schema`, by name."""
    rows = warehouse.query(
        "select table_name from information_schema.tables where table_schema = :s order by table_name",
        {"s": schema},
    )
    return [r["table_name"] for r in rows]


def read_relation(warehouse: Warehouse, relation: str, drop: list[str] | None = None) -> pd.DataFrame:
    """All rows of a relation but the `drop` columns, timestamps as UTC, in a stable order (sorted
    by every column)."""
    frame = pd.DataFrame(warehouse.query(f"select * from {relation}"))
    frame = frame.drop(columns=drop or [], errors="ignore")
    if frame.empty:
        return frame
    for column in frame.columns:
        if (
            pd.api.types.is_datetime64_any_dtype(frame[column])
            or frame[column].map(lambda v: hasattr(v, "tzinfo")).any()
        ):
            frame[column] = pd.to_datetime(frame[column], utc=True)
    # sort on every column, floats rounded so last-bit differences cannot reorder rows
    order = frame.copy()
    for column in order.columns:
        if pd.api.types.is_float_dtype(order[column]):
            order[column] = order[column].round(6)
        elif order[column].dtype == object:
            order[column] = order[column].map(lambda v: "" if v is None else str(v))
    index = order.sort_values(list(order.columns), na_position="first").index
    return frame.loc[index].reset_index(drop=True)


def assert_same_relation(name: str, left: pd.DataFrame, right: pd.DataFrame, rtol: float = 1e-9) -> None:
    """Equal row sets: same columns and rows, floats within `rtol`, NULLs equal; names the mart and
    shows the first differing rows when they are not."""
    assert list(left.columns) == list(right.columns) or (left.empty and right.empty), (
        f"{name}: columns differ: {list(left.columns)} vs {list(right.columns)}"
    )
    assert len(left) == len(right), f"{name}: {len(left)} rows vs {len(right)} rows"
    if left.empty:
        return
    try:
        pd.testing.assert_frame_equal(left, right, check_dtype=False, rtol=rtol, atol=1e-12)
    except AssertionError as exc:
        differing = (left.astype(str) != right.astype(str)).any(axis=1)
        raise AssertionError(
            f"{name} differs:\n{left[differing].head(3).to_string()}"
            f"\nvs\n{right[differing].head(3).to_string()}\n{exc}"
        ) from None
