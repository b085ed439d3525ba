{# The single value `sql` returns, as SQL text: when dbt runs a model, queried then and inlined as a
   literal, so both warehouses prune their scans by it (a subquery's value reaches neither DuckDB's
   zone maps nor PostgreSQL's index bounds at plan time); in a unit test, where the relations are
   fixtures, the subquery itself. A number or null. #}
{% macro query_value(sql) -%}
    {%- if execute and model.resource_type != 'unit_test' -%}
        {%- set value = run_query(sql).columns[0].values()[0] -%}
        {{ 'cast(null as double precision)' if value is none else value }}
    {%- else -%}
        ({{ sql }})
    {%- endif -%}
{%- endmacro %}
