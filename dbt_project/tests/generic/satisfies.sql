{# Rows where `<column> <expression>` does not hold (like dbt_utils.expression_is_true; no hub packages here). #}
{% test satisfies(model, column_name, expression) %}
select * from {{ model }} where not ({{ column_name }} {{ expression }})
{% endtest %}
