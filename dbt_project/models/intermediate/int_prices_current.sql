-- The latest tick of every selection of an active event, with the canonical event it belongs to.
-- Active: kicked off at most var `active_hours_after_kick_off` hours before the newest tick (so
-- upcoming and in play; null: every event). The current-state marts read this table, so a cycle
-- costs the events on offer, not the history; int_selection_state keeps every selection.
{{ config(materialized='table') }}

{%- set active_hours = var('active_hours_after_kick_off') %}
{%- if active_hours is not none %}
{#- A literal, so the scan of int_selection_state (clustered by kick-off) skips finished events. #}
{%- set newest = query_value('select extract(epoch from max(observed_at)) from ' ~ ref('int_selection_state')) %}
{%- endif %}

with state as (
    select * from {{ ref('int_selection_state') }}
    {% if active_hours is not none %}
    where starts_at > to_timestamp({{ newest }} - {{ 3600 * active_hours }})
    {% endif %}
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
