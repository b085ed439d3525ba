-- Each book's fair probability against the consensus of all the other books (leave-one-out) by
-- the multiplicative, power and Shin methods; edge at the book's price, probability points and a
-- z-score (multiplicative) where at least two other books quote the outcome.
with no_vig as (
    select * from {{ ref('int_no_vig_by_book') }}
),

totals as (
    select
        canonical_event_id, market, period, line, outcome,
        count(*) as books_quoting,
        sum(fair_probability_multiplicative) as probability_sum,
        sum(fair_probability_multiplicative * fair_probability_multiplicative) as probability_square_sum,
        sum(fair_probability_power) as power_sum,
        sum(fair_probability_shin) as shin_sum
    from no_vig
    group by canonical_event_id, market, period, line, outcome
),

others as (
    select
        no_vig.*,
        totals.books_quoting - 1 as other_books,
        (totals.probability_sum - no_vig.fair_probability_multiplicative) / nullif(totals.books_quoting - 1, 0)
            as consensus_probability,
        (totals.power_sum - no_vig.fair_probability_power) / nullif(totals.books_quoting - 1, 0)
            as consensus_probability_power,
        (totals.shin_sum - no_vig.fair_probability_shin) / nullif(totals.books_quoting - 1, 0)
            as consensus_probability_shin,
        (totals.probability_square_sum - no_vig.fair_probability_multiplicative * no_vig.fair_probability_multiplicative)
            / nullif(totals.books_quoting - 1, 0) as consensus_square_mean
    from no_vig
    inner join totals
        on no_vig.canonical_event_id = totals.canonical_event_id
        and no_vig.market = totals.market
        and no_vig.period = totals.period
        and coalesce(no_vig.line, -1e9) = coalesce(totals.line, -1e9)
        and no_vig.outcome = totals.outcome
)

select
    selection_key,
    canonical_event_id,
    bookmaker,
    market,
    period,
    line,
    outcome,
    price,
    fair_probability_multiplicative as book_probability,
    other_books,
    consensus_probability,
    consensus_probability_power,
    consensus_probability_shin,
    price * consensus_probability - 1 as edge,
    price * consensus_probability_shin - 1 as edge_shin,
    100 * (fair_probability_multiplicative - consensus_probability) as probability_points,
    case
        when other_books >= 2
            and consensus_square_mean - consensus_probability * consensus_probability > 1e-12
        then (fair_probability_multiplicative - consensus_probability)
            / sqrt(consensus_square_mean - consensus_probability * consensus_probability)
    end as z_score
from others
where other_books >= 1
