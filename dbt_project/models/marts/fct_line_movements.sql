-- How each bookmaker's price of each selection has moved: opening, current, range, change over
-- 5 min, 30 min and 2 h (in price % and implied-probability points), velocity, number of moves,
-- minutes to kick-off. "Now" is the newest tick in the warehouse, so a replayed day reads the
-- same as it did live.
with ticks as (
    select * from {{ ref('stg_raw__odds_ticks') }}
),

clock as (
    select max(observed_at) as as_of from ticks
),

by_selection as (
    select
        ticks.selection_key,
        min(ticks.observed_at) as first_seen_at,
        max(ticks.observed_at) as last_changed_at,
        count(*) - 1 as moves,
        (array_agg(ticks.price order by ticks.observed_at))[1] as opening_price,
        (array_agg(ticks.price order by ticks.observed_at desc))[1] as current_price,
        (array_agg(ticks.status order by ticks.observed_at desc))[1] as current_status,
        min(ticks.price) as min_price,
        max(ticks.price) as max_price,
        {{ price_as_of("clock.as_of - interval '5 minutes'") }} as price_5m_ago,
        {{ price_as_of("clock.as_of - interval '30 minutes'") }} as price_30m_ago,
        {{ price_as_of("clock.as_of - interval '2 hours'") }} as price_2h_ago
    from ticks
    cross join clock
    group by ticks.selection_key
),

current_prices as (
    select * from {{ ref('int_prices_current') }}
)

select
    current_prices.selection_key,
    current_prices.canonical_event_id,
    current_prices.bookmaker,
    current_prices.source_event_id,
    current_prices.market,
    current_prices.period,
    current_prices.line,
    current_prices.outcome,
    current_prices.starts_at,
    current_prices.is_live,
    by_selection.opening_price,
    by_selection.current_price,
    by_selection.current_status,
    by_selection.min_price,
    by_selection.max_price,
    by_selection.current_price / by_selection.price_5m_ago - 1 as change_5m,
    by_selection.current_price / by_selection.price_30m_ago - 1 as change_30m,
    by_selection.current_price / by_selection.price_2h_ago - 1 as change_2h,
    100 * (1.0 / by_selection.current_price - 1.0 / by_selection.price_5m_ago) as probability_points_5m,
    100 * (1.0 / by_selection.current_price - 1.0 / by_selection.price_30m_ago) as probability_points_30m,
    100 * (1.0 / by_selection.current_price - 1.0 / by_selection.price_2h_ago) as probability_points_2h,
    100 * (1.0 / by_selection.current_price - 1.0 / by_selection.price_30m_ago) / 30 as velocity_points_per_minute,
    by_selection.moves,
    by_selection.first_seen_at,
    by_selection.last_changed_at,
    cast(extract(epoch from (current_prices.starts_at - clock.as_of)) as double precision) / 60 as minutes_to_kick_off
from current_prices
inner join by_selection on current_prices.selection_key = by_selection.selection_key
cross join clock
