{# The ticks a marts cycle builds from: those of the loads up to var `load_seq_ceiling`, the last
   load committed when the cycle started (`oddly/warehouse/cycle.py`). The polls of the code server
   go on writing while dbt builds; without the ceiling one model of a cycle could read a load its
   upstream model had not, and the marts of one cycle would disagree. Unset (a build by hand, a
   full refresh, a unit test): every tick. #}
{% macro within_ceiling(load_seq_column) -%}
    {%- set ceiling = var('load_seq_ceiling', none) -%}
    {%- if ceiling is none -%}
        true
    {%- else -%}
        {{ load_seq_column }} <= {{ ceiling | int }}
    {%- endif -%}
{%- endmacro %}
