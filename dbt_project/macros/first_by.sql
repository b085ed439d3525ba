{# Aggregates: the (non-null) value of the row that sorts first (`first_by`) or last (`last_by`) by
   the columns `keys`, among the rows `where` keeps. DuckDB's arg_min/arg_max on the row of keys,
   without the per-group sort an ordered array_agg needs; elsewhere an ordered array_agg's head. #}
{% macro first_by(value, keys, where=none) -%}
    {{ _value_by(value, keys, where, 'arg_min', '') }}
{%- endmacro %}

{% macro last_by(value, keys, where=none) -%}
    {{ _value_by(value, keys, where, 'arg_max', ' desc') }}
{%- endmacro %}

{% macro _value_by(value, keys, where, arg_function, direction) -%}
    {%- set only = ' filter (where ' ~ where ~ ')' if where else '' -%}
    {%- if target.type == 'duckdb' -%}
        {{ arg_function }}({{ value }}, ({{ keys | join(', ') }})){{ only }}
    {%- else -%}
        (array_agg({{ value }} order by {{ keys | join(direction ~ ', ') }}{{ direction }}){{ only }})[1]
    {%- endif -%}
{%- endmacro %}
