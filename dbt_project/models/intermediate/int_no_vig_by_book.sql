-- Each book's fair probabilities with its margin removed, per complete open market, by three
-- methods: multiplicative (q / sum q); power (q^k with sum q^k = 1, k by Newton's method); Shin
-- (p_i = (sqrt(z^2 + 4 (1 - z) q_i^2 / Q) - z) / (2 (1 - z)) with sum p_i = 1, the insider share
-- z by Newton's method from z = 0). Both solves run a fixed number of Newton steps, which reach
-- machine precision on real markets (tests compare Shin with the `shin` package), so SQL solves
-- every method and no Python step is needed. A table: three marts and the tests read it.
{{ config(materialized='table') }}

with current_prices as (
    select
        *,
        {{ market_key(['bookmaker', 'source_event_id', 'market', 'period', 'line']) }} as book_market_key
    from {{ ref('int_prices_current') }}
    where canonical_event_id is not null and not is_suspended
),

-- One row per complete book market, its implied probabilities side by side: each Newton step is
-- then arithmetic on that row (no pass over the outcomes, no join per step). The steps are
-- materialized: inlined, PostgreSQL would substitute each step into the next, and the expression
-- of the last would grow exponentially.
markets as (
    select
        book_market_key,
        sum(implied_probability) as book_total,
        min(implied_probability) as q_low,
        max(implied_probability) as q_high,
        case
            when count(*) = 3 then sum(implied_probability) - min(implied_probability) - max(implied_probability)
        end as q_middle,
        cast(1.0 as double precision) as k_0,
        cast(0.0 as double precision) as z_0
    from current_prices
    group by book_market_key, market
    having count(*) = {{ complete_outcome_count('market') }}
),

-- Power method: Newton steps on k for sum(q^k) = 1.
{% for step in range(1, 9) %}
{%- set k = 'k_' ~ (step - 1) %}
power_{{ step }} as materialized (
    select
        *,
        {{ k }} - ({{ sum_over_outcomes('power(@q, ' ~ k ~ ')') }} - 1)
            / {{ sum_over_outcomes('power(@q, ' ~ k ~ ') * ln(@q)') }} as k_{{ step }}
    from {% if step == 1 %}markets{% else %}power_{{ step - 1 }}{% endif %}
),
{% endfor %}

-- Shin's method: Newton steps on z for sum(p_i(z)) = 1, with a_i = q_i^2 / Q.
{% for step in range(1, 7) %}
{%- set z = 'z_' ~ (step - 1) %}
{%- set root = 'sqrt(' ~ z ~ ' * ' ~ z ~ ' + 4 * (1 - ' ~ z ~ ') * @q * @q / book_total)' %}
{%- set slope = '(((' ~ z ~ ' - 2 * @q * @q / book_total) / ' ~ root ~ ' - 1) * (1 - ' ~ z ~ ') + '
    ~ root ~ ' - ' ~ z ~ ') / (2 * (1 - ' ~ z ~ ') * (1 - ' ~ z ~ '))' %}
shin_{{ step }} as materialized (
    select
        *,
        {{ z }} - ({{ sum_over_outcomes('(' ~ root ~ ' - ' ~ z ~ ') / (2 * (1 - ' ~ z ~ '))') }} - 1)
            / {{ sum_over_outcomes(slope) }} as z_{{ step }}
    from {% if step == 1 %}power_8{% else %}shin_{{ step - 1 }}{% endif %}
),
{% endfor %}

solved as (
    select book_market_key, book_total, k_8, z_6 from shin_6
)

select
    current_prices.selection_key,
    current_prices.canonical_event_id,
    current_prices.bookmaker,
    current_prices.market,
    current_prices.period,
    current_prices.line,
    current_prices.outcome,
    current_prices.price,
    current_prices.implied_probability,
    solved.book_total - 1 as overround,
    current_prices.implied_probability / solved.book_total as fair_probability_multiplicative,
    power(current_prices.implied_probability, solved.k_8) as fair_probability_power,
    solved.k_8 as power_exponent,
    (sqrt(solved.z_6 * solved.z_6 + 4 * (1 - solved.z_6) * current_prices.implied_probability
        * current_prices.implied_probability / solved.book_total) - solved.z_6)
        / (2 * (1 - solved.z_6)) as fair_probability_shin,
    solved.z_6 as shin_z
from current_prices
inner join solved on current_prices.book_market_key = solved.book_market_key
