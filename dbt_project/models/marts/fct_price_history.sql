-- The recent price history of the active events' selections, for the app's event charts: every
-- tick of the last var price_history_hours hours, plus, for a selection that moved in that window
-- and existed before it, one row at the window's start with the price then in force, so its line
-- starts where it stood. Kept small on purpose: rebuilt each cycle from a literal time window (the
-- scan prunes to recent blocks, as fct_line_movements' does) and published with the marts; the
-- full history stays in raw.odds_ticks. Selections that did not move are drawn from
-- fct_line_movements' current price.
{%- set hours = var('price_history_hours') %}
{%- set tick_order = ['recent_ticks.observed_at', 'recent_ticks.load_seq'] %}
{%- set window_start = query_value(
    'select extract(epoch from max(observed_at)) - ' ~ (3600 * hours) ~ ' from ' ~ ref('int_selection_state')) %}

with active as (
    select selection_key, first_seen_at from {{ ref('int_prices_current') }}
),

recent_ticks as (
    select ticks.selection_key, ticks.observed_at, ticks.load_seq, ticks.price, ticks.previous_price, ticks.is_suspended
    from {{ ref('stg_raw__odds_ticks') }} as ticks
    where ticks.observed_at > to_timestamp({{ window_start }})
        and ticks.selection_key in (select selection_key from active)
        and {{ within_ceiling('ticks.load_seq') }}
),

window_anchors as (
    select
        recent_ticks.selection_key,
        to_timestamp({{ window_start }}) as observed_at,
        {{ first_by('recent_ticks.previous_price', tick_order) }} as price,
        false as is_suspended
    from recent_ticks
    inner join active on recent_ticks.selection_key = active.selection_key
    where active.first_seen_at <= to_timestamp({{ window_start }})
    group by recent_ticks.selection_key
)

select selection_key, observed_at, price, is_suspended from recent_ticks
union all
select selection_key, observed_at, price, is_suspended from window_anchors
where price is not null
