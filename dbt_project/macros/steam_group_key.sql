{# The text key of one canonical outcome and a move direction, the same on every adapter (the
   line as an integer number of hundredths, since float-to-text differs between adapters). #}
{% macro steam_group_key(prefix) -%}
    {{ market_key([prefix ~ 'canonical_event_id', prefix ~ 'market', prefix ~ 'period',
                   'cast(round(' ~ prefix ~ 'line * 100) as bigint)', prefix ~ 'outcome',
                   prefix ~ 'direction']) }}
{%- endmacro %}
