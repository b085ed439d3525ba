-- Where every selection stands: its last tick in full, plus what its history adds up to (opening
-- price, range, tick and suspension counts). Incremental: a run reads only the ticks past the
-- highest load sequence it has seen and folds them into the rows of the selections they touch,
-- so a cycle costs the new ticks, not the history. Merged, not deleted and re-inserted: DuckDB
-- updates the touched rows in place, cheaper to write than whole new rows. The columns hashed into
-- selection_key never change for a key, so they are not rewritten.
{{
    config(
        materialized='incremental',
        unique_key='selection_key',
        incremental_strategy='merge',
        merge_exclude_columns=['selection_key', 'bookmaker', 'source_event_id', 'market', 'period', 'line',
                               'outcome'],
        on_schema_change='fail',
    )
}}

{% if is_incremental() %}
{%- set watermark = query_value('select coalesce(max(last_load_seq), 0) from ' ~ this) %}
{%- endif %}

with new_ticks as (
    select * from {{ ref('stg_raw__odds_ticks') }}
    where {{ within_ceiling('load_seq') }}
    {% if is_incremental() %}
        and load_seq > {{ watermark }}
    {% endif %}
),

ranked as (
    select
        *,
        row_number() over (partition by selection_key order by observed_at desc, load_seq desc) as newest_first
    from new_ticks
),

folded as (
    select
        selection_key,
        min(observed_at) as first_seen_at,
        {{ first_by('price', ['observed_at', 'load_seq']) }} as opening_price,
        min(price) as min_price,
        max(price) as max_price,
        count(*) as ticks,
        sum(case when is_suspended then 1 else 0 end) as suspended_ticks,
        max(load_seq) as last_load_seq
    from new_ticks
    group by selection_key
),

latest as (
    select * from ranked where newest_first = 1
){% if is_incremental() %},

-- The stored rows of the selections the new ticks touch (not the whole table into the join).
previous as (
    select * from {{ this }}
    where selection_key in (select selection_key from new_ticks)
){% endif %}

select
    latest.selection_key,
    latest.bookmaker,
    latest.source_event_id,
    latest.sport,
    latest.league,
    latest.country,
    latest.home_team,
    latest.away_team,
    latest.starts_at,
    latest.is_live,
    latest.market,
    latest.period,
    latest.line,
    latest.outcome,
    latest.price,
    latest.implied_probability,
    latest.status,
    latest.is_suspended,
    latest.source_ts,
    latest.observed_at,
    latest.feed_run_id,
    {% if is_incremental() %}
    coalesce(previous.first_seen_at, folded.first_seen_at) as first_seen_at,
    coalesce(previous.opening_price, folded.opening_price) as opening_price,
    case when previous.min_price < folded.min_price then previous.min_price else folded.min_price end as min_price,
    case when previous.max_price > folded.max_price then previous.max_price else folded.max_price end as max_price,
    coalesce(previous.ticks, 0) + folded.ticks as ticks,
    coalesce(previous.suspended_ticks, 0) + folded.suspended_ticks as suspended_ticks,
    {% else %}
    folded.first_seen_at,
    folded.opening_price,
    folded.min_price,
    folded.max_price,
    folded.ticks,
    folded.suspended_ticks,
    {% endif %}
    folded.last_load_seq
from latest
inner join folded on latest.selection_key = folded.selection_key
{% if is_incremental() %}
left join previous on latest.selection_key = previous.selection_key
{% endif %}
-- In kick-off order, so the table is clustered by it: new ticks belong to the events on offer, whose
-- rows then sit together at the end of the table, and a merge (its rows in the same order) patches
-- those few blocks once each (DuckDB, 50 M ticks: 0.2 s, against 1.4 s clustered by key, where the
-- touched rows are spread over every block); int_prices_current reads only them by zone maps.
order by latest.starts_at, latest.selection_key
