/* weir
materialized: table
description: >
  Per customer: orders, first and last order, and lifetime value (what their billed orders
  were worth). Customers without an order have 0. No personal field is carried: the key
  and the country are enough to join back or segment.
owner: shop-data
tags: [growth]
unique_key: [customer_id]
checks:
  - {rule: not_null, column: customer_id, name: customer_id.required}
  - {rule: range, column: lifetime_value, mustBeGreaterThanOrEqualTo: 0, name: ltv.negative}
*/
SELECT
    c.customer_id,
    c.country,
    c.signup_date,
    count(o.order_id) AS orders,
    min(o.ordered_at) AS first_order_at,
    max(o.ordered_at) AS last_order_at,
    CAST(coalesce(sum(o.quantity * o.unit_price * (1 - coalesce(o.discount, 0))), 0)
        AS DECIMAL(14, 2)) AS lifetime_value
FROM silver.customers AS c
LEFT JOIN silver.orders AS o
    ON o.customer_id = c.customer_id AND o.status NOT IN ('cancelled', 'returned')
GROUP BY ALL
