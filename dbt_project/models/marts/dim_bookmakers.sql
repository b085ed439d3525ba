-- Every bookmaker seen, and whether it is a sharp reference (var `sharp_books`).
with books as (
    select distinct bookmaker from {{ ref('int_selection_state') }}
)

select
    bookmaker,
    bookmaker in ({{ "'" ~ var('sharp_books') | join("', '") ~ "'" }}) as is_sharp
from books
