-- Every book's no-vig probabilities over a complete market sum to 1 within 1e-6, by all methods.
select
    bookmaker, canonical_event_id, market, period, line,
    sum(fair_probability_multiplicative) as multiplicative_sum,
    sum(fair_probability_power) as power_sum,
    sum(fair_probability_shin) as shin_sum
from {{ ref('int_no_vig_by_book') }}
group by bookmaker, canonical_event_id, market, period, line
having abs(sum(fair_probability_multiplicative) - 1) > 1e-6
    or abs(sum(fair_probability_power) - 1) > 1e-6
    or abs(sum(fair_probability_shin) - 1) > 1e-6
