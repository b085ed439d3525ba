with source as (
    select * from {{ source('raw', 'odds_ticks') }}
),

renamed as (
    select
        selection_key,
        bookmaker,
        source_event_id,
        sport,
        league,
        country,
        home as home_team,
        away as away_team,
        starts_at,
        is_live,
        market,
        period,
        line,
        outcome,
        cast(price as double precision) as price,
        1.0 / price as implied_probability,
        status,
        status = 'suspended' as is_suspended,
        source_ts,
        observed_at,
        feed_run_id,
        cast(previous_price as double precision) as previous_price,
        coalesce(load_seq, 0) as load_seq
    from source
)

select * from renamed
