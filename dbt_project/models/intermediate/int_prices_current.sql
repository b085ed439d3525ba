-- The latest tick of every selection of an active event, with the canonical event it belongs to.
-- Active: kicked off at most var `active_hours_after_kick_off` hours before the newest tick (so
-- upcoming and in play; null: every event). The current-state marts read this table, so a cycle
-- costs the events on offer, not the history; int_selection_state keeps every selection.
{{ config(materialized='table') }}

-- Not materialized: read twice (rows and newest tick), it would otherwise be copied in full first.
with state as not materialized (
    select * from {{ ref('int_selection_state') }}
),

event_map as (
    select * from {{ ref('stg_raw__event_map') }}
)

select
    state.*,
    event_map.canonical_event_id
from state
left join event_map
    on state.bookmaker = event_map.bookmaker
    and state.source_event_id = event_map.source_event_id
{% if var('active_hours_after_kick_off') is not none %}
where state.starts_at > (select max(observed_at) from state)
    - interval '{{ var("active_hours_after_kick_off") }} hours'
{% endif %}
