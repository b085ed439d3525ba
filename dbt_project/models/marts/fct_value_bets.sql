-- Prices worth more than their fair price at the sharp reference: edge = price x fair - 1, with
-- the fair probability from the sharp book's no-vig prices (power method; var `value_edge`).
with current_prices as (
    select * from {{ ref('fct_prices_current') }}
    where canonical_event_id is not null and not is_suspended
),

consensus as (
    select * from {{ ref('fct_consensus') }}
    where fair_probability_sharp_power is not null
),

books as (
    select * from {{ ref('dim_bookmakers') }}
),

edges as (
    select
        current_prices.canonical_event_id,
        current_prices.bookmaker,
        current_prices.market,
        current_prices.period,
        current_prices.line,
        current_prices.outcome,
        current_prices.price,
        consensus.fair_probability_sharp_power as fair_probability,
        1.0 / consensus.fair_probability_sharp_power as fair_price,
        current_prices.price * consensus.fair_probability_sharp_power - 1 as edge
    from current_prices
    inner join consensus
        on current_prices.canonical_event_id = consensus.canonical_event_id
        and current_prices.market = consensus.market
        and current_prices.period = consensus.period
        and coalesce(current_prices.line, -1e9) = coalesce(consensus.line, -1e9)
        and current_prices.outcome = consensus.outcome
    inner join books on current_prices.bookmaker = books.bookmaker
    where not books.is_sharp
)

select * from edges
where edge >= {{ var('value_edge', 0.02) }}
