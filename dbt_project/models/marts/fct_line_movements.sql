-- How each bookmaker's price of each selection has moved: opening, current, range, change over
-- 5 min, 30 min and 2 h (in price % and implied-probability points), velocity, number of moves,
-- minutes to kick-off. "Now" is the newest tick in the warehouse, so a replayed day reads the
-- same as it did live.
--
-- History is folded incrementally into int_selection_state; the windows need only the ticks of
-- the last 2 hours: the price in force at a window's start is the last tick at or before it, or,
-- when every recent tick is later, the price before the first of them (each tick carries its
-- previous price), or the current price when nothing moved.
{%- set tick_order = ['recent_ticks.observed_at', 'recent_ticks.load_seq'] %}

with state as (
    select * from {{ ref('int_prices_current') }}
),

clock as (
    select max(observed_at) as as_of from {{ ref('int_selection_state') }}
),

recent_ticks as (
    select ticks.selection_key, ticks.observed_at, ticks.load_seq, ticks.price, ticks.previous_price
    from {{ ref('stg_raw__odds_ticks') }} as ticks
    where ticks.observed_at > (select as_of from clock) - interval '2 hours'
        and {{ within_ceiling('ticks.load_seq') }}
),

windows as (
    select
        recent_ticks.selection_key,
        {{ last_by('recent_ticks.price', tick_order,
                   where="recent_ticks.observed_at <= clock.as_of - interval '5 minutes'") }} as last_before_5m,
        {{ last_by('recent_ticks.price', tick_order,
                   where="recent_ticks.observed_at <= clock.as_of - interval '30 minutes'") }} as last_before_30m,
        {{ first_by('coalesce(recent_ticks.previous_price, recent_ticks.price)', tick_order) }}
            as price_before_window
    from recent_ticks
    cross join clock
    group by recent_ticks.selection_key
),

prices_then as (
    select
        state.*,
        coalesce(windows.last_before_5m, windows.price_before_window, state.price) as price_5m_ago,
        coalesce(windows.last_before_30m, windows.price_before_window, state.price) as price_30m_ago,
        coalesce(windows.price_before_window, state.price) as price_2h_ago
    from state
    left join windows on state.selection_key = windows.selection_key
)

select
    prices_then.selection_key,
    prices_then.canonical_event_id,
    prices_then.bookmaker,
    prices_then.source_event_id,
    prices_then.market,
    prices_then.period,
    prices_then.line,
    prices_then.outcome,
    prices_then.starts_at,
    prices_then.is_live,
    prices_then.opening_price,
    prices_then.price as current_price,
    prices_then.status as current_status,
    prices_then.min_price,
    prices_then.max_price,
    prices_then.price / prices_then.price_5m_ago - 1 as change_5m,
    prices_then.price / prices_then.price_30m_ago - 1 as change_30m,
    prices_then.price / prices_then.price_2h_ago - 1 as change_2h,
    100 * (1.0 / prices_then.price - 1.0 / prices_then.price_5m_ago) as probability_points_5m,
    100 * (1.0 / prices_then.price - 1.0 / prices_then.price_30m_ago) as probability_points_30m,
    100 * (1.0 / prices_then.price - 1.0 / prices_then.price_2h_ago) as probability_points_2h,
    100 * (1.0 / prices_then.price - 1.0 / prices_then.price_30m_ago) / 30 as velocity_points_per_minute,
    prices_then.ticks - 1 as moves,
    prices_then.first_seen_at,
    prices_then.observed_at as last_changed_at,
    cast(extract(epoch from (prices_then.starts_at - clock.as_of)) as double precision) / 60 as minutes_to_kick_off
from prices_then
cross join clock
