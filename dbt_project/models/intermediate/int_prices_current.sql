-- The latest tick of every selection, with the canonical event it belongs to.
with state as (
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
