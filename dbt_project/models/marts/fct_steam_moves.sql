-- Steam: at least var `steam_min_books` books moving one canonical outcome the same way (each by a
-- significant move) within var `steam_window_minutes` of the first of them, who is named. A steam
-- is reported at its first mover; a qualifying start within the window after a reported one is
-- part of it, not a new steam.
--
-- Incremental: new moves touch some outcomes (and directions). A steam depends only on the moves in
-- its own window and in the window before it, so of the touched outcomes' steams only those
-- starting at most one window before the earliest new move can change: a run recomputes them from
-- the moves since two windows before it and replaces them (keyed by steam_id and started_at, so the
-- table is read by its start times, never as a whole). A stored steam the recomputation no longer
-- finds (a new earlier start absorbed it) comes back as a tombstone, which the post-hook deletes in
-- the same transaction. The result equals a full refresh; a cycle costs the recent moves.
{{
    config(
        materialized='incremental',
        unique_key=['steam_id', 'started_at'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook='delete from {{ this }} where books is null',
    )
}}

{% if is_incremental() %}
{#- The highest move folded in, and the second of the earliest new move past it: literals, so the
    scans below read the recent moves only (by zone maps on DuckDB, where moves are stored in time
    order). The whole second keeps the bounds exact; starting up to a second early recomputes a
    little more, with the moves it needs. #}
{%- set watermark = query_value('select coalesce(max(processed_load_seq), 0) from ' ~ this) %}
{%- set first_new = query_value('select floor(extract(epoch from min(observed_at))) from '
                                ~ ref('int_price_moves') ~ ' where load_seq > ' ~ watermark) %}
{%- endif %}

with moves as (
    select
        moves.*,
        event_map.canonical_event_id
    from {{ ref('int_price_moves') }} as moves
    inner join {{ ref('stg_raw__event_map') }} as event_map
        on moves.bookmaker = event_map.bookmaker
        and moves.source_event_id = event_map.source_event_id
    {% if is_incremental() %}
    -- The moves a recomputed steam can reach: from two windows before the earliest new move (none
    -- when nothing moved: null compares to nothing).
    where moves.observed_at >= to_timestamp({{ first_new }} - {{ 120 * var('steam_window_minutes') }})
    {% endif %}
),

-- The window's time bucket: a follower is in its anchor's bucket or the next one.
keyed as (
    select
        *,
        {{ steam_group_key('') }} as steam_group_key,
        cast(floor(extract(epoch from observed_at) / {{ 60 * var('steam_window_minutes') }}) as bigint)
            as window_bucket
    from moves
),

{% if is_incremental() %}
new_moves as (
    select * from keyed where load_seq > {{ watermark }}
),

touched as (
    select distinct steam_group_key from new_moves
),

group_moves as (
    select keyed.*
    from keyed
    inner join touched on keyed.steam_group_key = touched.steam_group_key
),

-- The stored steams being replaced (filtered on the start time first: a narrow column).
replaced as (
    select *
    from {{ this }}
    where started_at >= to_timestamp({{ first_new }} - {{ 60 * var('steam_window_minutes') }})
        and steam_group_key in (select steam_group_key from touched)
),
{% else %}
group_moves as (
    select * from keyed
),
{% endif %}

-- Each move as a candidate first mover, once for its own window bucket and once for the next, so
-- the join compares moves of nearby buckets only, not every pair of an outcome's moves.
anchors as (
    select group_moves.*, group_moves.window_bucket + shifts.shift as follower_bucket
    from group_moves
    cross join (select 0 as shift union all select 1) as shifts
),

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
        {{ first_by('follower.probability_points', ['follower.observed_at']) }} as probability_points
    from anchors as anchor
    inner join group_moves as follower
        on anchor.steam_group_key = follower.steam_group_key
        and anchor.follower_bucket = follower.window_bucket
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
),

found as (
    select
        steams.steam_group_key || '|'
            || cast(cast(round(extract(epoch from steams.started_at) * 1000) as bigint) as varchar) as steam_id,
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
    {% if is_incremental() %}
    where steams.started_at >= to_timestamp({{ first_new }} - {{ 60 * var('steam_window_minutes') }})
    {% endif %}
)

select * from found
{% if not is_incremental() %}
-- In start order (later runs append recent steams): the replaced steams are then read by zone maps.
order by started_at
{% else %}

union all

-- Tombstones: replaced steams not found again.
select
    steam_id, steam_group_key, canonical_event_id, market, period, line, outcome, direction, started_at,
    last_moved_at, first_bookmaker, first_mover_is_sharp, cast(null as bigint) as books, bookmakers,
    mean_probability_points, processed_load_seq
from replaced
where steam_id not in (select steam_id from found)
{% endif %}
