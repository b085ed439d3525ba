-- Fair (no-vig) probability per canonical outcome by the multiplicative, power and Shin methods:
-- from the sharp reference book(s), and from all books together; `fct_divergence` holds, per
-- book, the consensus of all the other books (leave-one-out) it is judged against.
with no_vig as (
    select * from {{ ref('int_no_vig_by_book') }}
),

books as (
    select * from {{ ref('dim_bookmakers') }}
)

select
    no_vig.canonical_event_id,
    no_vig.market,
    no_vig.period,
    no_vig.line,
    no_vig.outcome,
    count(*) as bookmakers,
    avg(no_vig.fair_probability_multiplicative) as fair_probability_all_multiplicative,
    avg(no_vig.fair_probability_power) as fair_probability_all_power,
    avg(no_vig.fair_probability_shin) as fair_probability_all_shin,
    avg(case when books.is_sharp then no_vig.fair_probability_multiplicative end) as fair_probability_sharp_multiplicative,
    avg(case when books.is_sharp then no_vig.fair_probability_power end) as fair_probability_sharp_power,
    avg(case when books.is_sharp then no_vig.fair_probability_shin end) as fair_probability_sharp_shin,
    min(no_vig.overround) as lowest_overround,
    avg(no_vig.overround) as mean_overround
from no_vig
inner join books on no_vig.bookmaker = books.bookmaker
group by no_vig.canonical_event_id, no_vig.market, no_vig.period, no_vig.line, no_vig.outcome
