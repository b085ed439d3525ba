-- The best open price of every outcome across books, per canonical market with a complete,
-- mutually exclusive outcome set (1X2; two-way totals and handicaps on the same line; never
-- double chance). Prices are compared after an exchange's commission on winnings (var
-- `exchange_commission`): what a winning bet really pays. Where the best net prices imply less
-- than 100 %, backing each outcome with the stake share below returns the same whatever happens:
-- margin = 1 - sum(1 / best net price).
with current_prices as (
    select
        *,
        {{ commission('bookmaker') }} as commission,
        {{ net_price('price', 'bookmaker') }} as net_price
    from {{ ref('int_prices_current') }}
    where canonical_event_id is not null and not is_suspended
        and {{ complete_outcome_count('market') }} is not null
),

ranked as (
    select
        *,
        row_number() over (
            partition by canonical_event_id, market, period, line, outcome
            order by net_price desc, bookmaker
        ) as price_rank
    from current_prices
),

best as (
    select * from ranked where price_rank = 1
),

sets as (
    select
        *,
        count(*) over canonical_market as outcomes_quoted,
        sum(1.0 / net_price) over canonical_market as implied_total
    from best
    window canonical_market as (partition by canonical_event_id, market, period, line)
)

select
    canonical_event_id,
    market,
    period,
    line,
    outcome,
    bookmaker as best_bookmaker,
    price as best_price,
    commission,
    net_price as best_net_price,
    implied_total,
    1 - implied_total as margin,
    -- Not at exactly 100 %: the sum of 1 / price of such a set lands within float rounding of 1
    -- on either side (1/1.68 + 1/4.2 + 1/6), and it returns nothing anyway.
    implied_total < 1 - 1e-9 as is_arbitrage,
    (1.0 / net_price) / implied_total as stake_share
from sets
where outcomes_quoted = {{ complete_outcome_count('market') }}
