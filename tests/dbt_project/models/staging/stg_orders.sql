-- Every silver order; rows weir flagged (warn-level rules) keep dq_valid = false.
select
    order_id,
    email as customer_hash,
    amount,
    dq_valid,
    updated_at,
    cast(updated_at as date) as order_date
from {{ source('silver', 'orders') }}
