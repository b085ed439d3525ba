{# How many outcomes make a market's set complete and mutually exclusive; double chance overlaps
   and unknown raw markets have no such set (never part of a no-vig or arbitrage calculation). #}
{% macro complete_outcome_count(market) -%}
    case
        when {{ market }} = '1x2' then 3
        when {{ market }} in ('total', 'handicap', 'team_total_home', 'team_total_away', 'btts',
                              'asian_total', 'asian_handicap', 'moneyline') then 2
    end
{%- endmacro %}

{# One text key for a market at a book (or across books when bookmaker is left out). #}
{% macro market_key(columns) -%}
    {%- for column in columns -%}
        coalesce(cast({{ column }} as varchar), '~'){% if not loop.last %} || '|' || {% endif %}
    {%- endfor -%}
{%- endmacro %}
