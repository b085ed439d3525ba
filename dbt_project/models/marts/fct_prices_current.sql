-- The latest price and status per bookmaker x selection, with the book's overround on that
-- market when its outcome set is complete (1X2: three outcomes; two-way markets: two; double
-- chance overlaps and unknown raw markets get none).
with current_prices as (
    select * from {{ ref('int_prices_current') }}
),

with_market_totals as (
    select
        *,
        sum(case when not is_suspended then implied_probability end) over market_at_book
            as market_implied_total,
        count(case when not is_suspended then 1 end) over market_at_book as open_outcomes
    from current_prices
    window market_at_book as (partition by bookmaker, source_event_id, market, period, line)
)

select
    selection_key,
    canonical_event_id,
    bookmaker,
    source_event_id,
    sport,
    league,
    home_team,
    away_team,
    starts_at,
    is_live,
    market,
    period,
    line,
    outcome,
    price,
    implied_probability,
    status,
    is_suspended,
    observed_at as last_changed_at,
    case
        when market = '1x2' and open_outcomes = 3 then market_implied_total - 1
        when market in ('total', 'handicap', 'team_total_home', 'team_total_away', 'btts',
                        'asian_total', 'asian_handicap') and open_outcomes = 2
            then market_implied_total - 1
    end as overround
from with_market_totals
