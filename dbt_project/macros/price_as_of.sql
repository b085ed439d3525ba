{# The price a selection showed at time `at`: its last tick at or before `at`, or its first
   tick when it appeared later. Used inside a group by selection over its ticks. #}
{% macro price_as_of(at) -%}
    coalesce(
        (array_agg(price order by observed_at desc) filter (where observed_at <= {{ at }}))[1],
        (array_agg(price order by observed_at))[1]
    )
{%- endmacro %}
