-- Steam: at least var `steam_min_books` books moving one canonical outcome the same way (each by a
-- significant move) within var `steam_window_minutes` of the first of them, who is named. A steam
-- is reported at its first mover; a qualifying start within the window after a reported one is
-- part of it, not a new steam.
--
-- Incremental by outcome: a run recomputes, over their whole move history, only the outcomes
-- (and directions) that new moves touched, and replaces their rows, so its result equals a full
-- refresh while its cost is the touched outcomes' moves.
{{
    config(
        materialized='incremental',
        unique_key='steam_group_key',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

with moves as (
    select
        moves.*,
        event_map.canonical_event_id
    from {{ ref('int_price_moves') }} as moves
    inner join {{ ref('stg_raw__event_map') }} as event_map
        on moves.bookmaker = event_map.bookmaker
        and moves.source_event_id = event_map.source_event_id
),

keyed as (
    select *, {{ steam_group_key('') }} as steam_group_key
    from moves
),

{% if is_incremental() %}
touched as (
    select distinct steam_group_key
    from keyed
    where load_seq > (select coalesce(max(processed_load_seq), 0) from {{ this }})
),

group_moves as (
    select keyed.* from keyed inner join touched on keyed.steam_group_key = touched.steam_group_key
),
{% else %}
group_moves as (
    select * from keyed
),
{% endif %}

-- Each move as a candidate first mover, with every book's first same-way move in its window.
followers as (
    select
        anchor.steam_group_key,
        anchor.canonical_event_id,
        anchor.market,
        anchor.period,
        anchor.line,
        anchor.outcome,
        anchor.direction,
        anchor.observed_at as started_at,
        anchor.bookmaker as first_bookmaker,
        follower.bookmaker,
        min(follower.observed_at) as moved_at,
        (array_agg(follower.probability_points order by follower.observed_at))[1] as probability_points
    from group_moves as anchor
    inner join group_moves as follower
        on anchor.steam_group_key = follower.steam_group_key
        and (follower.observed_at > anchor.observed_at
             or (follower.observed_at = anchor.observed_at and follower.bookmaker >= anchor.bookmaker))
        and follower.observed_at <= anchor.observed_at + interval '{{ var("steam_window_minutes") }} minutes'
    group by
        anchor.steam_group_key, anchor.canonical_event_id, anchor.market, anchor.period, anchor.line,
        anchor.outcome, anchor.direction, anchor.observed_at, anchor.bookmaker, follower.bookmaker
),

windows as (
    select
        steam_group_key,
        canonical_event_id,
        market,
        period,
        line,
        outcome,
        direction,
        started_at,
        first_bookmaker,
        count(*) as books,
        max(moved_at) as last_moved_at,
        string_agg(bookmaker, ',' order by moved_at, bookmaker) as bookmakers,
        avg(probability_points) as mean_probability_points
    from followers
    group by
        steam_group_key, canonical_event_id, market, period, line, outcome, direction, started_at,
        first_bookmaker
),

qualifying as (
    select * from windows where books >= {{ var('steam_min_books') }}
),

steams as (
    select qualifying.*
    from qualifying
    where not exists (
        select 1
        from qualifying as earlier
        where earlier.steam_group_key = qualifying.steam_group_key
            and earlier.started_at >= qualifying.started_at - interval '{{ var("steam_window_minutes") }} minutes'
            and (earlier.started_at < qualifying.started_at
                 or (earlier.started_at = qualifying.started_at
                     and earlier.first_bookmaker < qualifying.first_bookmaker))
    )
),

books as (
    select * from {{ ref('dim_bookmakers') }}
)

select
    steams.steam_group_key || '|' || cast(cast(round(extract(epoch from steams.started_at) * 1000) as bigint) as varchar)
        as steam_id,
    steams.steam_group_key,
    steams.canonical_event_id,
    steams.market,
    steams.period,
    steams.line,
    steams.outcome,
    steams.direction,
    steams.started_at,
    steams.last_moved_at,
    steams.first_bookmaker,
    coalesce(books.is_sharp, false) as first_mover_is_sharp,
    steams.books,
    steams.bookmakers,
    steams.mean_probability_points,
    (select max(load_seq) from {{ ref('int_price_moves') }}) as processed_load_seq
from steams
left join books on steams.first_bookmaker = books.bookmaker
