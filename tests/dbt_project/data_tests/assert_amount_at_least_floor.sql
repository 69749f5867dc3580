-- No order below the floor (var amount_floor, default 0): weir only flags such amounts.
select order_id, amount
from {{ ref('stg_orders') }}
where amount < {{ var('amount_floor', 0) }}
