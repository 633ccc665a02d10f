-- event_changes (named query, run by the Go package for the live streams):
-- the events whose last transition is later than a watermark, oldest change
-- first, with event_list's columns and filters.
--
-- Parameters: as event_list, plus since_ns (Int64 Unix ns: last_time >
--   since) and limit (UInt32). event_list is rendered with its Since
--   pre-filter, so only the events table's rows of changed events are
--   grouped, not every event of the tenant.
SELECT
    {{template "_event_columns.sql" .}}
FROM
(
{{template "event_list.sql" .}}
)
WHERE last_ns > {since_ns:Int64}
ORDER BY last_ns ASC, request_id ASC
LIMIT {limit:UInt32}
