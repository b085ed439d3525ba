-- The latest tick of every selection, with the canonical event it belongs to.
with ticks as (
    select * from {{ ref('stg_raw__odds_ticks') }}
),

latest as (
    select * from {{ ref('stg_raw__latest_prices') }}
),

event_map as (
    select * from {{ ref('stg_raw__event_map') }}
),

current_ticks as (
    select ticks.*
    from ticks
    inner join latest
        on ticks.selection_key = latest.selection_key
        and ticks.observed_at = latest.last_changed_at
)

select
    current_ticks.*,
    event_map.canonical_event_id
from current_ticks
left join event_map
    on current_ticks.bookmaker = event_map.bookmaker
    and current_ticks.source_event_id = event_map.source_event_id
