-- How good each bookmaker's lines are, per market: its margin, how stale its prices get while
-- others move, how long it takes to follow the sharp reference, how often it suspends, and how
-- often its prices are out of line with the other books.
{%- set newest = query_value('select extract(epoch from max(observed_at)) from ' ~ ref('int_prices_current')) %}

with state as (
    select * from {{ ref('int_prices_current') }}
),

books as (
    select * from {{ ref('dim_bookmakers') }}
),

counts as (
    select
        bookmaker,
        market,
        count(*) as selections,
        sum(ticks) as ticks,
        cast(sum(suspended_ticks) as double precision) / sum(ticks) as suspension_rate
    from state
    group by bookmaker, market
),

margins as (
    select bookmaker, market, avg(overround) as mean_margin
    from (
        select distinct bookmaker, canonical_event_id, market, period, line, overround
        from {{ ref('int_no_vig_by_book') }}
    ) as markets
    group by bookmaker, market
),

-- Staleness: on each canonical market, how long before the last change of any other book this
-- book last changed (0 when it is as fresh as the freshest other).
book_market_updates as (
    select bookmaker, canonical_event_id, market, period, line, max(observed_at) as last_changed_at
    from state
    where canonical_event_id is not null
    group by bookmaker, canonical_event_id, market, period, line
),

staleness as (
    select
        own.bookmaker,
        own.market,
        greatest(
            cast(extract(epoch from (max(other.last_changed_at) - own.last_changed_at)) as double precision),
            0
        ) as stale_seconds
    from book_market_updates as own
    inner join book_market_updates as other
        on own.canonical_event_id = other.canonical_event_id
        and own.market = other.market
        and own.period = other.period
        and coalesce(own.line, -1e9) = coalesce(other.line, -1e9)
        and own.bookmaker <> other.bookmaker
    group by own.bookmaker, own.canonical_event_id, own.market, own.period, own.line, own.last_changed_at
),

staleness_by_book as (
    select
        bookmaker,
        market,
        avg(stale_seconds) as mean_stale_seconds,
        percentile_cont(0.5) within group (order by stale_seconds) as median_stale_seconds
    from staleness
    group by bookmaker, market
),

-- Lag behind the sharp reference: for each significant sharp move of the last var
-- `quality_window_hours` hours (to the newest price), this book's first move of the same outcome
-- the same way within var `follow_window_minutes`. A window, so a cycle reads recent moves only.
moves as (
    select moves.*, event_map.canonical_event_id
    from {{ ref('int_price_moves') }} as moves
    inner join {{ ref('stg_raw__event_map') }} as event_map
        on moves.bookmaker = event_map.bookmaker
        and moves.source_event_id = event_map.source_event_id
    where moves.observed_at > to_timestamp({{ newest }} - {{ 3600 * var('quality_window_hours') }})
),

sharp_moves as (
    select moves.*
    from moves
    inner join books on moves.bookmaker = books.bookmaker
    where books.is_sharp
),

follows as (
    select
        follower.bookmaker,
        sharp.market,
        sharp.bookmaker as sharp_bookmaker,
        sharp.selection_key as sharp_selection_key,
        sharp.load_seq as sharp_load_seq,
        min(cast(extract(epoch from (follower.observed_at - sharp.observed_at)) as double precision))
            as lag_seconds
    from sharp_moves as sharp
    inner join moves as follower
        on sharp.canonical_event_id = follower.canonical_event_id
        and sharp.market = follower.market
        and sharp.period = follower.period
        and coalesce(sharp.line, -1e9) = coalesce(follower.line, -1e9)
        and sharp.outcome = follower.outcome
        and sharp.direction = follower.direction
        and follower.bookmaker <> sharp.bookmaker
        and follower.observed_at >= sharp.observed_at
        and follower.observed_at <= sharp.observed_at + interval '{{ var("follow_window_minutes") }} minutes'
    group by follower.bookmaker, sharp.market, sharp.bookmaker, sharp.selection_key, sharp.load_seq
),

lags as (
    select
        bookmaker,
        market,
        count(*) as sharp_moves_followed,
        percentile_cont(0.5) within group (order by lag_seconds) as median_lag_seconds
    from follows
    group by bookmaker, market
),

out_of_line as (
    select
        bookmaker,
        market,
        -- a double on both warehouses (PostgreSQL would average its numeric literals as numeric)
        avg(cast(abs(probability_points) >= {{ var('out_of_line_points') }} as integer) * cast(1 as double precision))
            as out_of_line_share
    from {{ ref('fct_divergence') }}
    group by bookmaker, market
)

select
    counts.bookmaker,
    counts.market,
    coalesce(books.is_sharp, false) as is_sharp,
    counts.selections,
    counts.ticks,
    margins.mean_margin,
    staleness_by_book.mean_stale_seconds,
    staleness_by_book.median_stale_seconds,
    lags.sharp_moves_followed,
    lags.median_lag_seconds,
    counts.suspension_rate,
    out_of_line.out_of_line_share
from counts
left join books on counts.bookmaker = books.bookmaker
left join margins on counts.bookmaker = margins.bookmaker and counts.market = margins.market
left join staleness_by_book
    on counts.bookmaker = staleness_by_book.bookmaker and counts.market = staleness_by_book.market
left join lags on counts.bookmaker = lags.bookmaker and counts.market = lags.market
left join out_of_line on counts.bookmaker = out_of_line.bookmaker and counts.market = out_of_line.market
