/* weir
materialized: incremental
description: >
  One row per flight leg, the columns the marts use, with the local scheduled departure as a
  timestamp. Incremental: a run recomputes the legs of the last three days it has seen and
  everything after (the monthly drop), and merges only what changed.
owner: flight-ops-data
tags: [flights, staging]
unique_key: [flight_date, carrier, flight_number, origin]
partition_by: [flight_month]
incremental: {column: flight_date, lookback: 3 days}
checks:
  - {rule: not_null, column: flight_key, name: flight_key.required}
  - {rule: not_null, column: scheduled_departure, name: scheduled_departure.required}
*/
SELECT
    surrogate_key AS flight_key,
    dep_date AS flight_date,
    CAST(date_trunc('month', dep_date) AS DATE) AS flight_month,
    carrier,
    flight_number,
    origin,
    destination,
    tailnum,
    -- local (America/New_York) wall-clock time, like sched_dep_time
    make_timestamp(year, month, day, sched_hour, sched_minute, 0) AS scheduled_departure,
    dep_delay,
    arr_delay,
    air_time,
    distance,
    is_cancelled,
    is_diverted_or_unreported,
    dq_valid
FROM silver.flights
