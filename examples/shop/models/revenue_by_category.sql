/* weir
materialized: table
description: Billed revenue and units per product category and order month.
owner: shop-data
tags: [finance, merchandising]
unique_key: [order_month, category]
*/
SELECT
    CAST(date_trunc('month', o.ordered_at) AS DATE) AS order_month,
    coalesce(p.category, 'unknown') AS category,
    sum(o.quantity) AS units,
    CAST(sum(o.quantity * o.unit_price * (1 - coalesce(o.discount, 0))) AS DECIMAL(14, 2))
        AS revenue
FROM silver.orders AS o
LEFT JOIN silver.products AS p ON p.product_id = o.product_id
WHERE o.status NOT IN ('cancelled', 'returned')
GROUP BY ALL
