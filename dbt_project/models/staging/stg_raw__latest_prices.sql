with source as (
    select * from {{ source('raw', 'latest_prices') }}
),

renamed as (
    select
        selection_key,
        observed_at as last_changed_at
    from source
)

select * from renamed
