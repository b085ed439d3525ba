{# The decimal price a winning bet pays after the book's commission on net winnings (var
   `exchange_commission`, by bookmaker; an exchange charges it, a sportsbook's price is net):
   1 + (price - 1) * (1 - commission). #}
{% macro commission(bookmaker) -%}
    {%- set rates = var('exchange_commission') or {} -%}
    {%- if rates -%}
        case {{ bookmaker }}
        {%- for book, rate in rates.items() %} when '{{ book }}' then {{ rate }}{% endfor %}
        else 0.0 end
    {%- else -%}
        0.0
    {%- endif -%}
{%- endmacro %}

{% macro net_price(price, bookmaker) -%}
    (1 + ({{ price }} - 1) * (1 - {{ commission(bookmaker) }}))
{%- endmacro %}
