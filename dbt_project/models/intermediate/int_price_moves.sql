-- Significant price moves: ticks of an open selection whose implied probability moved by at least
-- var `significant_move_points` from the price before it. Incremental on the load sequence.
{{
    config(
        materialized='incremental',
        unique_key=['selection_key', 'load_seq'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

with ticks as (
    select * from {{ ref('stg_raw__odds_ticks') }}
    where previous_price is not null
        and not is_suspended
        and abs(1.0 / price - 1.0 / previous_price) * 100 >= {{ var('significant_move_points') }}
    {% if is_incremental() %}
        and load_seq > (select coalesce(max(load_seq), 0) from {{ this }})
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
