/* weir
materialized: table
description: >
  One row per flight leg with the aircraft as registered when it departed: the plane
  version is picked point-in-time (valid_at) by the scheduled departure, so a flight before
  a registry change keeps the old attributes and a flight after it gets the new ones. A
  table, recomputed in full when its sources change: a registry change can reach back into
  any month, which a window would miss (336,776 rows take under a second).
owner: flight-ops-data
tags: [flights, planes]
unique_key: [flight_date, carrier, flight_number, origin]
partition_by: [flight_month]
checks:
  - rule: row_condition
    severity: warn
    name: plane.unknown
    condition: "tailnum IS NULL OR plane_key IS NOT NULL"
    description: >
      A tailnum with no registered aircraft at departure: American and Envoy report fleet
      numbers, not registrations (see contracts/planes.yml).
*/
SELECT
    f.flight_key,
    f.flight_date,
    f.flight_month,
    f.carrier,
    f.flight_number,
    f.origin,
    f.destination,
    f.tailnum,
    f.scheduled_departure,
    f.dep_delay,
    f.arr_delay,
    f.distance,
    f.is_cancelled,
    p.plane_key,
    p.manufacturer_std AS plane_manufacturer,
    p.model AS plane_model,
    p.seats AS plane_seats,
    p.year_built AS plane_year_built
FROM gold.stg_flights AS f
LEFT JOIN gold.dim_planes AS p
    ON p.tailnum = f.tailnum AND valid_at(p, f.scheduled_departure)
