-- Orders and revenue per day, over the orders that passed weir's warn-level rules.
select
    order_date,
    count(*) as orders,
    sum(amount) as revenue
from {{ ref('stg_orders') }}
where dq_valid
group by order_date
