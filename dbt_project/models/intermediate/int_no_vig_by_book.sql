-- Each book's fair probabilities with its margin removed, per complete open market, by the
-- multiplicative method (q / sum q) and the power method (q^k with sum q^k = 1, k solved by
-- Newton's method in a fixed number of steps).
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

multiplicative as (
    select
        *,
        sum(implied_probability) over (partition by book_market_key) as book_total
    from complete
),

k_0 as (
    select book_market_key, cast(1.0 as double precision) as k
    from complete
    group by book_market_key
),

{% for step in range(1, 9) %}
k_{{ step }} as (
    select
        complete.book_market_key,
        k_{{ step - 1 }}.k - (sum(power(complete.implied_probability, k_{{ step - 1 }}.k)) - 1)
            / sum(power(complete.implied_probability, k_{{ step - 1 }}.k) * ln(complete.implied_probability)) as k
    from complete
    inner join k_{{ step - 1 }} on complete.book_market_key = k_{{ step - 1 }}.book_market_key
    group by complete.book_market_key, k_{{ step - 1 }}.k
),
{% endfor %}

power_method as (
    select
        complete.selection_key,
        power(complete.implied_probability, k_8.k) as fair_probability_power,
        k_8.k as power_exponent
    from complete
    inner join k_8 on complete.book_market_key = k_8.book_market_key
)

select
    multiplicative.selection_key,
    multiplicative.canonical_event_id,
    multiplicative.bookmaker,
    multiplicative.market,
    multiplicative.period,
    multiplicative.line,
    multiplicative.outcome,
    multiplicative.price,
    multiplicative.implied_probability,
    multiplicative.book_total - 1 as overround,
    multiplicative.implied_probability / multiplicative.book_total as fair_probability_multiplicative,
    power_method.fair_probability_power,
    power_method.power_exponent
from multiplicative
inner join power_method on multiplicative.selection_key = power_method.selection_key
