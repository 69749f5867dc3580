/* weir
materialized: table
description: >
  Revenue per order day: the orders that were not cancelled or returned, each worth
  quantity × unit_price × (1 − discount). Recomputed whole when silver.orders changes (a
  status change on day 2 can move revenue of any earlier day).
owner: shop-data
tags: [finance, daily]
unique_key: [order_date]
checks:
  - {rule: range, column: revenue, mustBeGreaterThanOrEqualTo: 0, name: revenue.negative}
  - {rule: row_condition, name: counts_consistent, condition: "billed_orders + lost_orders = orders"}
*/
SELECT
    CAST(ordered_at AS DATE) AS order_date,
    count(*) AS orders,
    count(*) FILTER (WHERE status NOT IN ('cancelled', 'returned')) AS billed_orders,
    count(*) FILTER (WHERE status IN ('cancelled', 'returned')) AS lost_orders,
    CAST(coalesce(sum(quantity * unit_price * (1 - coalesce(discount, 0)))
        FILTER (WHERE status NOT IN ('cancelled', 'returned')), 0) AS DECIMAL(14, 2)) AS revenue
FROM silver.orders
GROUP BY ALL
