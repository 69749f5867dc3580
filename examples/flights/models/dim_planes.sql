/* weir
materialized: table
description: >
  The planes dimension: every version of snp_planes with its validity in registry time. A
  version is valid from the as-of date of the extract that brought it until the as-of date of
  the extract that replaced or removed it; recorded_from / recorded_to keep the snapshot's
  own clock (when weir saw the change). Join it point-in-time with valid_at(p, <timestamp>).
owner: fleet-data
tags: [planes]
unique_key: [plane_key]
checks:
  - {rule: unique, columns: [tailnum, valid_from], name: one_version_per_date}
  - rule: row_condition
    name: validity_ordered
    condition: "valid_to IS NULL OR valid_to > valid_from"
  - {rule: range, column: seats, mustBeGreaterThanOrEqualTo: 20, severity: warn, name: not_an_airliner}
*/
WITH versions AS (
    SELECT
        *,
        lead(registry_date) OVER (PARTITION BY tailnum ORDER BY valid_from) AS replaced_on
    FROM gold.snp_planes
),
extracts AS (  -- each registry extract and the run that first recorded it
    SELECT registry_date, min(valid_from) AS recorded_at
    FROM gold.snp_planes
    GROUP BY registry_date
),
removals AS (  -- a version closed without a successor: the first extract recorded since
    SELECT
        v.surrogate_key,
        coalesce(
            (SELECT min(e.registry_date) FROM extracts e WHERE e.recorded_at >= v.valid_to),
            (SELECT max(registry_date) FROM gold.stg_planes)
        ) AS removed_on
    FROM versions v
    WHERE NOT v.is_current AND v.replaced_on IS NULL
)
SELECT
    v.surrogate_key AS plane_key,
    v.tailnum,
    v.year_built,
    v.aircraft_type,
    v.manufacturer,
    v.manufacturer_std,
    v.model,
    v.engines,
    v.seats,
    v.engine,
    CAST(v.registry_date AS TIMESTAMP) AS valid_from,
    CAST(coalesce(v.replaced_on, r.removed_on) AS TIMESTAMP) AS valid_to,
    v.is_current,
    v.valid_from AS recorded_from,
    v.valid_to AS recorded_to
FROM versions v
LEFT JOIN removals r ON r.surrogate_key = v.surrogate_key
