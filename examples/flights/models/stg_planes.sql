/* weir
materialized: table
description: >
  The aircraft of the latest registry extract, with that extract's as-of date (from the file
  name, planes_<YYYY-MM-DD>.csv). silver.planes keeps every aircraft ever delivered (a merge
  never deletes); an aircraft missing from the latest extract was deregistered and is left
  out here, so the snapshot closes it.
owner: fleet-data
tags: [planes, staging]
unique_key: [tailnum]
checks:
  - {rule: not_null, column: registry_date, name: registry_date.from_file_name}
  - {rule: row_count, mustBeGreaterThanOrEqualTo: 1000, severity: warn, name: extract_too_small}
*/
WITH extracts AS (
    SELECT
        *,
        CAST(regexp_extract(_source_file, 'planes_(\d{4}-\d{2}-\d{2})\.csv$', 1) AS DATE)
            AS registry_date
    FROM silver.planes
)
SELECT
    tailnum,
    year_built,
    aircraft_type,
    manufacturer,
    manufacturer_std,
    model,
    engines,
    seats,
    speed_mph,
    engine,
    registry_date
FROM extracts
WHERE registry_date = (SELECT max(registry_date) FROM extracts)
