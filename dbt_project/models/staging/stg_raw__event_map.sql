with source as (
    select * from {{ source('raw', 'event_map') }}
),

renamed as (
    select
        bookmaker,
        source_event_id,
        canonical_event_id,
        method as match_method,
        score as match_score,
        home_normalized,
        away_normalized
    from source
)

select * from renamed
