/* weir
materialized: snapshot
description: >
  SCD Type 2 history of the aircraft registry. A version opens when an attribute that
  matters changes (check strategy; a new spelling of the same manufacturer is not a change,
  manufacturer_std is what is tracked) and closes when the aircraft leaves the registry.
  valid_from / valid_to are weir's clock: when the run saw the change. dim_planes restates
  them in registry time.
owner: fleet-data
tags: [planes]
unique_key: [tailnum]
snapshot:
  strategy: check
  check_cols: [year_built, aircraft_type, manufacturer_std, model, engines, seats, engine]
  hard_deletes: close
checks:   # a snapshot's checks see its current rows
  - {rule: unique, columns: [tailnum], name: one_current_version}
  - {rule: not_null, column: registry_date, name: registry_date.required}
*/
SELECT * FROM gold.stg_planes
