-- Significant price moves: ticks of an open selection whose implied probability moved by at least
-- var `significant_move_points` from the price before it. Incremental on the load sequence: a run
-- appends the moves of the ticks past the highest load it holds (none of them can be there yet,
-- so nothing is looked up or deleted), keeping the table in load order for range scans.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
    )
}}

{% if is_incremental() %}
{%- set watermark = query_value('select coalesce(max(load_seq), 0) from ' ~ this) %}
{%- endif %}

with ticks as (
    select * from {{ ref('stg_raw__odds_ticks') }}
    where previous_price is not null
        and not is_suspended
        and {{ within_ceiling('load_seq') }}
        and abs(1.0 / price - 1.0 / previous_price) * 100 >= {{ var('significant_move_points') }}
    {% if is_incremental() %}
        and load_seq > {{ watermark }}
    {% endif %}
)

select
    selection_key,
    bookmaker,
    source_event_id,
    market,
    period,
    line,
    outcome,
    observed_at,
    load_seq,
    previous_price,
    price,
    100 * (1.0 / price - 1.0 / previous_price) as probability_points,
    case when price < previous_price then 'shortening' else 'drifting' end as direction
from ticks
