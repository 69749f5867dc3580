/* weir
materialized: incremental
description: >
  Daily on-time performance per carrier and NYC airport. A flight is on time when it arrives
  less than 15 minutes after its scheduled arrival, as the US DOT counts it; cancelled and
  diverted flights are not on time. Delays are in minutes, over the flights that departed
  (avg, median) or arrived (arr_*).
owner: flight-ops-data
tags: [flights, daily]
unique_key: [flight_date, carrier, origin]
# 12 month partitions of ~1,250 rows: a run's window (the last 3 days + the new month)
# rewrites at most two files. Daily partitions would make 365 files of ~40 rows each.
partition_by: [flight_month]
incremental: {column: flight_date, lookback: 3 days}
checks:
  - {rule: range, column: on_time_share, mustBeBetween: [0, 1], name: on_time_share.range}
  - rule: row_condition
    name: counts_consistent
    condition: "cancelled + departed = flights AND dep_delayed_15 <= departed AND on_time <= departed"
  - rule: row_condition
    severity: warn
    name: all_cancelled
    condition: "cancelled < flights"
    description: Every flight of the carrier at that airport cancelled that day (storms).
  - rule: row_condition
    severity: warn
    name: meltdown
    condition: "flights < 10 OR on_time_share >= 0.25"
    description: Fewer than a quarter of 10 or more flights on time.
*/
SELECT
    flight_date,
    flight_month,
    carrier,
    origin,
    count(*) AS flights,
    count(*) FILTER (WHERE is_cancelled) AS cancelled,
    count(*) FILTER (WHERE NOT is_cancelled) AS departed,
    count(*) FILTER (WHERE dep_delay > 15) AS dep_delayed_15,
    count(*) FILTER (WHERE arr_delay < 15) AS on_time,
    round(count(*) FILTER (WHERE arr_delay < 15) / count(*), 4) AS on_time_share,
    round(avg(dep_delay), 2) AS avg_dep_delay,
    median(dep_delay) AS median_dep_delay,
    round(avg(arr_delay), 2) AS avg_arr_delay,
    median(arr_delay) AS median_arr_delay
FROM gold.stg_flights
GROUP BY flight_date, flight_month, carrier, origin
