-- Each book's fair probabilities with its margin removed, per complete open market, by three
-- methods: multiplicative (q / sum q); power (q^k with sum q^k = 1, k by Newton's method); Shin
-- (p_i = (sqrt(z^2 + 4 (1 - z) q_i^2 / Q) - z) / (2 (1 - z)) with sum p_i = 1, the insider share
-- z by Newton's method from z = 0). Both solves run a fixed number of Newton steps, which reach
-- machine precision on real markets (tests compare Shin with the `shin` package), so SQL solves
-- every method and no Python step is needed.
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

shin_z_0 as (
    select book_market_key, cast(0.0 as double precision) as z
    from complete
    group by book_market_key
),

shin_terms as (
    select
        book_market_key,
        selection_key,
        implied_probability * implied_probability
            / sum(implied_probability) over (partition by book_market_key) as a
    from complete
),

{% for step in range(1, 7) %}
shin_z_{{ step }} as (
    select
        shin_terms.book_market_key,
        previous.z - (
            sum((sqrt(previous.z * previous.z + 4 * (1 - previous.z) * shin_terms.a) - previous.z)
                / (2 * (1 - previous.z))) - 1
        ) / sum(
            (((previous.z - 2 * shin_terms.a)
                / sqrt(previous.z * previous.z + 4 * (1 - previous.z) * shin_terms.a) - 1) * (1 - previous.z)
             + sqrt(previous.z * previous.z + 4 * (1 - previous.z) * shin_terms.a) - previous.z)
            / (2 * (1 - previous.z) * (1 - previous.z))
        ) as z
    from shin_terms
    inner join shin_z_{{ step - 1 }} as previous on shin_terms.book_market_key = previous.book_market_key
    group by shin_terms.book_market_key, previous.z
),
{% endfor %}

shin_method as (
    select
        shin_terms.selection_key,
        (sqrt(shin_z_6.z * shin_z_6.z + 4 * (1 - shin_z_6.z) * shin_terms.a) - shin_z_6.z)
            / (2 * (1 - shin_z_6.z)) as fair_probability_shin,
        shin_z_6.z as shin_z
    from shin_terms
    inner join shin_z_6 on shin_terms.book_market_key = shin_z_6.book_market_key
),

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
    power_method.power_exponent,
    shin_method.fair_probability_shin,
    shin_method.shin_z
from multiplicative
inner join power_method on multiplicative.selection_key = power_method.selection_key
inner join shin_method on multiplicative.selection_key = shin_method.selection_key
