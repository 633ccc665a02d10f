-- event_page (named query, run by the Go package): one page of event_list,
-- ordered by start or end time then request_id, after an optional keyset
-- cursor. The ORDER BY and the cursor condition are one of four fixed
-- fragments chosen by the order field and direction, never user input.
--
-- Extra parameters: after_set UInt8 (0 = first page), after_ns Int64 and
--   after_id String (the sort key of the previous page's last row),
--   limit UInt32 (1..100), offset UInt64.
SELECT
    {{template "_event_columns.sql" .}}
FROM
(
{{template "event_list.sql" .}}
)
WHERE {after_set:UInt8} = 0 OR {{.After}}
ORDER BY {{.Order}}
LIMIT {limit:UInt32} OFFSET {offset:UInt64}
