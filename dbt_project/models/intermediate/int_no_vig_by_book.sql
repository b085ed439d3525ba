-- Each book's fair probabilities with its margin removed, per complete open market, by three
-- methods: multiplicative (q / sum q); power (q^k with sum q^k = 1, k by Newton's method); Shin
-- (p_i = (sqrt(z^2 + 4 (1 - z) q_i^2 / Q) - z) / (2 (1 - z)) with sum p_i = 1, the insider share
-- z by Newton's method from z = 0). Both solves run a fixed number of Newton steps, which reach
-- machine precision on real markets (tests compare Shin with the `shin` package), so SQL solves
-- every method and no Python step is needed. A table: three marts and the tests read it.
{{ config(materialized='table') }}

with current_prices as (
    select * from {{ ref('int_prices_current') }}
    where canonical_event_id is not null and not is_suspended
),

markets as (
    select
        *,
        {{ market_key(['bookmaker', 'source_event_id', 'market', 'period', 'line']) }} as book_market_key,
        count(*) over (partition by bookmaker, source_event_id, market, period, line) as outcomes_open,
        {{ complete_outcome_count('market') }} as outcomes_needed
    from current_prices
),

complete as (
    select * from markets where outcomes_open = outcomes_needed
),

-- One pipeline of window passes over each market, no joins (a planner that misjudges the
-- complete markets' row count would otherwise loop over them once per row).
multiplicative as (
    select
        *,
        sum(implied_probability) over (partition by book_market_key) as book_total,
        cast(1.0 as double precision) as k_0,
        cast(0.0 as double precision) as z_0
    from complete
),

-- Power method: Newton steps on k for sum(q^k) = 1.
power_0 as (
    select * from multiplicative
),

{% for step in range(1, 9) %}
power_{{ step }} as (
    select
        *,
        k_{{ step - 1 }}
            - (sum(power(implied_probability, k_{{ step - 1 }})) over book_market - 1)
            / sum(power(implied_probability, k_{{ step - 1 }}) * ln(implied_probability)) over book_market
            as k_{{ step }}
    from power_{{ step - 1 }}
    window book_market as (partition by book_market_key)
),
{% endfor %}

-- Shin's method: Newton steps on z for sum(p_i(z)) = 1, with a_i = q_i^2 / Q.
shin_0 as (
    select *, implied_probability * implied_probability / book_total as shin_a from power_8
),

{% for step in range(1, 7) %}
{%- set z = 'z_' ~ (step - 1) %}
{%- set root = 'sqrt(' ~ z ~ ' * ' ~ z ~ ' + 4 * (1 - ' ~ z ~ ') * shin_a)' %}
shin_{{ step }} as (
    select
        *,
        {{ z }}
            - (sum(({{ root }} - {{ z }}) / (2 * (1 - {{ z }}))) over book_market - 1)
            / sum(
                (((({{ z }} - 2 * shin_a) / {{ root }}) - 1) * (1 - {{ z }}) + {{ root }} - {{ z }})
                / (2 * (1 - {{ z }}) * (1 - {{ z }}))
            ) over book_market
            as z_{{ step }}
    from shin_{{ step - 1 }}
    window book_market as (partition by book_market_key)
)
{%- if not loop.last %},{% endif %}
{% endfor %}

select
    selection_key,
    canonical_event_id,
    bookmaker,
    market,
    period,
    line,
    outcome,
    price,
    implied_probability,
    book_total - 1 as overround,
    implied_probability / book_total as fair_probability_multiplicative,
    power(implied_probability, k_8) as fair_probability_power,
    k_8 as power_exponent,
    (sqrt(z_6 * z_6 + 4 * (1 - z_6) * shin_a) - z_6) / (2 * (1 - z_6)) as fair_probability_shin,
    z_6 as shin_z
from shin_6
