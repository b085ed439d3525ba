{# The sum of a term over a book market's outcomes held side by side (int_no_vig_by_book): the
   lowest, the highest and, on a 1X2, the middle implied probability. `template` writes the term
   with @q for the outcome's column; a missing middle adds nothing. #}
{% macro sum_over_outcomes(template) -%}
    ({% for q in ['q_low', 'q_high', 'q_middle'] -%}
        coalesce({{ template | replace('@q', q) }}, 0){% if not loop.last %} + {% endif %}
    {%- endfor %})
{%- endmacro %}
