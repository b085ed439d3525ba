-- One row per canonical event; names and kick-off as the sharpest book that lists it has them.
with current_prices as (
    select * from {{ ref('int_prices_current') }}
    where canonical_event_id is not null
),

books as (
    select * from {{ ref('dim_bookmakers') }}
),

event_rows as (
    select distinct
        current_prices.canonical_event_id,
        current_prices.bookmaker,
        current_prices.sport,
        current_prices.league,
        current_prices.country,
        current_prices.home_team,
        current_prices.away_team,
        current_prices.starts_at,
        current_prices.is_live,
        books.is_sharp
    from current_prices
    inner join books on current_prices.bookmaker = books.bookmaker
),

ranked as (
    select
        *,
        row_number() over (
            partition by canonical_event_id
            order by case when is_sharp then 0 else 1 end, bookmaker
        ) as preference,
        count(*) over (partition by canonical_event_id) as bookmaker_count
    from event_rows
)

select
    canonical_event_id,
    sport,
    league,
    country,
    home_team,
    away_team,
    starts_at,
    is_live,
    bookmaker as named_by,
    bookmaker_count
from ranked
where preference = 1
